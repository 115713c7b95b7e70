package clientapi

import (
	"testing"
)

// Reproductions of Complement's tests/csapi/apidoc_logout_test.go,
// apidoc_device_management_test.go, account_change_password_test.go,
// account_change_password_pushers_test.go, account_deactivate_test.go and
// apidoc_profile_*_test.go.

func TestComplementLogout(t *testing.T) {
	d := cmDeploy(t)
	verify := d.register(t, "testuser", "superuser", false)

	t.Run("Can logout current device", func(t *testing.T) {
		other := d.login(t, verify.userID, "superuser", nil)
		if n := len(other.mustDo(t, "GET", cmV3("devices")).get("devices").Array()); n != 2 {
			t.Fatalf("%d devices", n)
		}
		other.mustDo(t, "POST", cmV3("logout"))
		cmWant(t, "sync after logout", other.do(t, "GET", cmV3("sync")), 401, "")
		devs := verify.mustDo(t, "GET", cmV3("devices")).get("devices").Array()
		if len(devs) != 1 || devs[0].Get("device_id").Str == other.deviceID {
			t.Fatalf("devices: %v", devs)
		}
	})
	t.Run("Can logout all devices", func(t *testing.T) {
		other := d.login(t, verify.userID, "superuser", nil)
		other.mustDo(t, "POST", cmV3("logout", "all"))
		cmWant(t, "sync", other.do(t, "GET", cmV3("sync")), 401, "")
		cmWant(t, "sync", verify.do(t, "GET", cmV3("sync")), 401, "")
	})
	t.Run("Request to logout with invalid an access token is rejected", func(t *testing.T) {
		other := d.login(t, verify.userID, "superuser", nil)
		other.accessToken = "invalidAccessToken"
		cmWant(t, "logout", other.do(t, "POST", cmV3("logout")), 401, "M_UNKNOWN_TOKEN")
	})
	t.Run("Request to logout without an access token is rejected", func(t *testing.T) {
		other := d.login(t, verify.userID, "superuser", nil)
		other.accessToken = ""
		cmWant(t, "logout", other.do(t, "POST", cmV3("logout")), 401, "M_MISSING_TOKEN")
	})
}

func TestComplementDeviceManagement(t *testing.T) {
	d := cmDeploy(t)
	authed := d.register(t, "test_device_management_user", "superuser", false)
	passwordAuth := func(user, password string) map[string]any {
		return map[string]any{"auth": map[string]any{
			"identifier": map[string]any{"type": "m.id.user", "user": user},
			"type":       "m.login.password", "password": password,
		}}
	}

	t.Run("GET /device/{deviceId}", func(t *testing.T) {
		d.login(t, authed.userID, "superuser", map[string]any{"device_id": "login_device", "initial_device_display_name": "device display"})
		r := authed.mustDo(t, "GET", cmV3("devices", "login_device"))
		if r.str("device_id") != "login_device" || r.str("display_name") != "device display" {
			t.Fatalf("got %s", r.body)
		}
	})
	t.Run("GET /device/{deviceId} gives a 404 for unknown devices", func(t *testing.T) {
		cmWant(t, "get", authed.do(t, "GET", cmV3("devices", "unknown_device")), 404, "")
	})
	t.Run("GET /devices", func(t *testing.T) {
		d.login(t, authed.userID, "superuser", map[string]any{"device_id": "login_device_2", "initial_device_display_name": "device display"})
		want := map[string]bool{"login_device": true, "login_device_2": true}
		for _, dev := range authed.mustDo(t, "GET", cmV3("devices")).get("devices").Array() {
			delete(want, dev.Get("device_id").Str)
		}
		if len(want) != 0 {
			t.Fatalf("missing %v", want)
		}
	})
	t.Run("PUT /device/{deviceId} updates device fields", func(t *testing.T) {
		authed.mustDo(t, "PUT", cmV3("devices", "login_device"), cmJSON(map[string]any{"display_name": "new device display"}))
		r := authed.mustDo(t, "GET", cmV3("devices", "login_device"))
		if r.str("device_id") != "login_device" || r.str("display_name") != "new device display" {
			t.Fatalf("got %s", r.body)
		}
	})
	t.Run("PUT /device/{deviceId} gives a 404 for unknown devices", func(t *testing.T) {
		r := authed.do(t, "PUT", cmV3("devices", "unknown_device"), cmJSON(map[string]any{"display_name": "new device display"}))
		cmWant(t, "put", r, 404, "")
	})
	t.Run("DELETE /device/{deviceId}", func(t *testing.T) {
		session2 := d.login(t, authed.userID, "superuser", nil)
		session2.sync(t, "", nil)
		r := authed.do(t, "DELETE", cmV3("devices", session2.deviceID))
		cmWant(t, "no body", r, 401, "")
		for _, k := range []string{"session", "flows", "params"} {
			if !r.get(k).Exists() {
				t.Fatalf("no %s: %s", k, r.body)
			}
		}
		r = authed.do(t, "DELETE", cmV3("devices", session2.deviceID), cmJSON(passwordAuth(authed.userID, "super-wrong-password")))
		cmWant(t, "wrong password", r, 401, "M_FORBIDDEN")
		for _, k := range []string{"session", "flows", "params", "error"} {
			if !r.get(k).Exists() {
				t.Fatalf("no %s: %s", k, r.body)
			}
		}
		cmWant(t, "right password", authed.do(t, "DELETE", cmV3("devices", session2.deviceID), cmJSON(passwordAuth(authed.userID, "superuser"))), 200, "")
		cmWant(t, "deleted", authed.do(t, "GET", cmV3("devices", session2.deviceID)), 404, "")
		cmWant(t, "token gone", session2.do(t, "GET", cmV3("sync")), 401, "")
	})
	t.Run("DELETE /device/{deviceId} requires UI auth user to match device owner", func(t *testing.T) {
		bob := d.register(t, "bob", "bobspassword", false)
		session2 := d.login(t, authed.userID, "superuser", nil)
		session2.sync(t, "", nil)
		r := authed.do(t, "DELETE", cmV3("devices", session2.deviceID), cmJSON(passwordAuth(bob.userID, "bobspassword")))
		cmWant(t, "bob's password", r, 403, "")
		cmWant(t, "still there", authed.do(t, "GET", cmV3("devices", session2.deviceID)), 200, "")
		cmWant(t, "own password", authed.do(t, "DELETE", cmV3("devices", session2.deviceID), cmJSON(passwordAuth(authed.userID, "superuser"))), 200, "")
		cmWant(t, "deleted", authed.do(t, "GET", cmV3("devices", session2.deviceID)), 404, "")
	})
}

func TestComplementChangePassword(t *testing.T) {
	d := cmDeploy(t)
	pc := d.register(t, "", "superuser", false)
	un := d.unauthed()
	sessionTest := d.login(t, pc.userID, "superuser", nil)
	change := func(old, new string) {
		t.Helper()
		pc.mustDo(t, "POST", cmV3("account", "password"), cmJSON(map[string]any{
			"auth": map[string]any{"type": "m.login.password",
				"identifier": map[string]any{"type": "m.id.user", "user": pc.userID}, "password": old},
			"new_password": new,
		}))
	}
	login := func(password string) cmResp {
		return un.do(t, "POST", cmV3("login"), cmJSON(map[string]any{
			"identifier": map[string]any{"type": "m.id.user", "user": pc.userID},
			"type":       "m.login.password", "password": password}))
	}

	t.Run("After changing password, can't log in with old password", func(t *testing.T) {
		change("superuser", "my_new_password")
		cmWant(t, "old password", login("superuser"), 403, "M_FORBIDDEN")
	})
	t.Run("After changing password, can log in with new password", func(t *testing.T) {
		r := login("my_new_password")
		if r.status != 200 || r.str("user_id") != pc.userID {
			t.Fatalf("got %d %s", r.status, r.body)
		}
	})
	t.Run("After changing password, existing session still works", func(t *testing.T) {
		cmWant(t, "whoami", pc.do(t, "GET", cmV3("account", "whoami")), 200, "")
	})
	t.Run("After changing password, a different session no longer works by default", func(t *testing.T) {
		cmWant(t, "whoami", sessionTest.do(t, "GET", cmV3("account", "whoami")), 401, "")
	})
	t.Run("After changing password, different sessions can optionally be kept", func(t *testing.T) {
		optional := d.login(t, pc.userID, "my_new_password", nil)
		pc.mustDo(t, "POST", cmV3("account", "password"), cmJSON(map[string]any{
			"auth":         map[string]any{"type": "m.login.password", "user": pc.userID, "password": "my_new_password"},
			"new_password": "new_optional_password", "logout_devices": false,
		}))
		cmWant(t, "whoami", optional.do(t, "GET", cmV3("account", "whoami")), 200, "")
	})
}

func TestComplementChangePasswordPushers(t *testing.T) {
	d := cmDeploy(t)
	pc := d.register(t, "", "superuser", false)
	pusher := map[string]any{
		"data": map[string]any{"url": "https://dummy.url/_matrix/push/v1/notify"}, "profile_tag": "tag",
		"kind": "http", "app_id": "complement", "app_display_name": "complement_display_name",
		"device_display_name": "device_display_name", "pushkey": "a_push_key", "lang": "en",
	}
	change := func(old, new string) {
		t.Helper()
		pc.mustDo(t, "POST", cmV3("account", "password"), cmJSON(map[string]any{
			"auth": map[string]any{"type": "m.login.password",
				"identifier": map[string]any{"type": "m.id.user", "user": pc.userID}, "password": old},
			"new_password": new,
		}))
	}
	t.Run("Pushers created with a different access token are deleted on password change", func(t *testing.T) {
		other := d.login(t, pc.userID, "superuser", nil)
		other.mustDo(t, "POST", []string{"_matrix", "client", "r0", "pushers", "set"}, cmJSON(pusher))
		change("superuser", "my_new_password")
		r := pc.mustDo(t, "GET", []string{"_matrix", "client", "r0", "pushers"})
		if n := len(r.get("pushers").Array()); n != 0 {
			t.Fatalf("%d pushers left: %s", n, r.body)
		}
	})
	t.Run("Pushers created with a the same access token are not deleted on password change", func(t *testing.T) {
		pc.mustDo(t, "POST", []string{"_matrix", "client", "r0", "pushers", "set"}, cmJSON(pusher))
		change("my_new_password", "superuser")
		r := pc.mustDo(t, "GET", []string{"_matrix", "client", "r0", "pushers"})
		if n := len(r.get("pushers").Array()); n != 1 {
			t.Fatalf("%d pushers: %s", n, r.body)
		}
	})
}

func TestComplementDeactivateAccount(t *testing.T) {
	d := cmDeploy(t)
	authed := d.register(t, "", "superuser", false)
	deactivate := func(password string) cmResp {
		return authed.do(t, "POST", cmV3("account", "deactivate"), cmJSON(map[string]any{
			"auth": map[string]any{"type": "m.login.password", "user": authed.userID, "password": password}}))
	}
	t.Run("Password flow is available", func(t *testing.T) {
		r := authed.do(t, "POST", cmV3("account", "deactivate"), cmJSON(map[string]any{}))
		cmWant(t, "no auth", r, 401, "")
		found := false
		for _, f := range r.get("flows").Array() {
			for _, s := range f.Get("stages").Array() {
				found = found || s.Str == "m.login.password"
			}
		}
		if !found {
			t.Fatalf("no password stage: %s", r.body)
		}
	})
	t.Run("Can't deactivate account with wrong password", func(t *testing.T) {
		cmWant(t, "wrong password", deactivate("wrong_password"), 401, "M_FORBIDDEN")
	})
	t.Run("Can deactivate account", func(t *testing.T) {
		cmWant(t, "deactivate", deactivate("superuser"), 200, "")
	})
	t.Run("After deactivating account, can't log in with password", func(t *testing.T) {
		r := d.unauthed().do(t, "POST", cmV3("login"), cmJSON(map[string]any{
			"identifier": map[string]any{"type": "m.id.user", "user": authed.userID},
			"type":       "m.login.password", "password": "superuser"}))
		cmWant(t, "login", r, 403, "")
	})
}

func TestComplementProfile(t *testing.T) {
	d := cmDeploy(t)
	un := d.unauthed()
	authed := d.register(t, "", "", false)
	t.Run("PUT /profile/:user_id/displayname sets my name", func(t *testing.T) {
		authed.mustDo(t, "PUT", cmV3("profile", authed.userID, "displayname"), cmJSON(map[string]any{"displayname": "my_display_name"}))
	})
	t.Run("GET /profile/:user_id/displayname publicly accessible", func(t *testing.T) {
		r := un.mustDo(t, "GET", cmV3("profile", authed.userID, "displayname"))
		if r.str("displayname") != "my_display_name" {
			t.Fatalf("got %s", r.body)
		}
	})
	const avatar = "mxc://example.com/SEsfnsuifSDFSSEF"
	t.Run("PUT /profile/:user_id/avatar_url sets my avatar", func(t *testing.T) {
		authed.mustDo(t, "PUT", []string{"_matrix", "client", "r0", "profile", authed.userID, "avatar_url"}, cmJSON(map[string]any{"avatar_url": avatar}))
	})
	t.Run("GET /profile/:user_id/avatar_url publicly accessible", func(t *testing.T) {
		r := un.do(t, "GET", []string{"_matrix", "client", "r0", "profile", authed.userID, "avatar_url"})
		if r.status != 200 || r.str("avatar_url") != avatar {
			t.Fatalf("got %d %s", r.status, r.body)
		}
	})
}
