package clientapi

import (
	"net/url"
	"testing"
)

// Reproductions of Complement's tests/csapi/apidoc_register_test.go,
// apidoc_login_test.go and apidoc_request_encoding_test.go.

func TestComplementRegistration(t *testing.T) {
	d := cmDeploy(t)
	un := d.unauthed()

	t.Run("POST {} returns a set of flows", func(t *testing.T) {
		r := un.do(t, "POST", cmV3("register"), cmRaw([]byte(`{}`)))
		cmWant(t, "register {}", r, 401, "")
		if r.header.Get("Content-Type") != "application/json" {
			t.Fatalf("Content-Type %q", r.header.Get("Content-Type"))
		}
		flows := r.get("flows").Array()
		if len(flows) == 0 {
			t.Fatalf("no flows: %s", r.body)
		}
		for _, f := range flows {
			if !f.Get("stages").IsArray() {
				t.Fatalf("stages is not an array: %s", r.body)
			}
		}
	})
	t.Run("POST /register can create a user", func(t *testing.T) {
		body, _ := cmStartUIA(t, un, "post-can-create-a-user", "sUp3rs3kr1t", nil)
		r := un.do(t, "POST", cmV3("register"), cmJSON(body))
		cmWant(t, "register", r, 200, "")
		if r.str("access_token") == "" || r.str("user_id") == "" {
			t.Fatalf("answer: %s", r.body)
		}
	})
	t.Run("POST /register downcases capitals in usernames", func(t *testing.T) {
		body, _ := cmStartUIA(t, un, "user-UPPER", "sUp3rs3kr1t", nil)
		r := un.do(t, "POST", cmV3("register"), cmJSON(body))
		if r.status != 200 || r.str("user_id") != "@user-upper:hs1" {
			t.Fatalf("got %d %s", r.status, r.body)
		}
	})
	t.Run("POST /register returns the same device_id as that in the request", func(t *testing.T) {
		body, _ := cmStartUIA(t, un, "user-device", "my_device_id", map[string]any{"device_id": "my_device_id"})
		r := un.do(t, "POST", cmV3("register"), cmJSON(body))
		if r.status != 200 || r.str("device_id") != "my_device_id" {
			t.Fatalf("got %d %s", r.status, r.body)
		}
	})
	t.Run("POST /register rejects usernames with special characters", func(t *testing.T) {
		for _, ch := range []string{`!`, `"`, `:`, `?`, `\\`, `@`, `[`, `]`, `{`, `|`, `}`, `£`, `é`, `\n`, `'`} {
			r := un.do(t, "POST", cmV3("register"), cmJSON(map[string]any{
				"username": "user-" + ch + "-reject-please", "password": "sUp3rs3kr1t"}))
			cmWant(t, "username with "+ch, r, 400, "M_INVALID_USERNAME")
		}
	})
	t.Run("POST /register rejects if user already exists", func(t *testing.T) {
		body, _ := cmStartUIA(t, un, "post-can-create-a-user-once", "sUp3rs3kr1t", nil)
		cmWant(t, "first", un.do(t, "POST", cmV3("register"), cmJSON(body)), 200, "")
		delete(body, "auth")
		cmWant(t, "second", un.do(t, "POST", cmV3("register"), cmJSON(body)), 400, "M_USER_IN_USE")
	})
	t.Run("POST /register allows registration of usernames with ", func(t *testing.T) {
		for _, ch := range "q3._=-/" {
			d.register(t, "chrtestuser"+string(ch), "sUp3rs3kr1t", false)
		}
	})
	t.Run("POST /_synapse/admin/v1/register admin with shared secret", func(t *testing.T) {
		r := cmSharedSecret(t, un, "adminuser", "sUp3rs3kr1t", true)
		if r.status != 200 || r.str("user_id") != "@adminuser:hs1" {
			t.Fatalf("got %d %s", r.status, r.body)
		}
	})
	t.Run("POST /_synapse/admin/v1/register with shared secret", func(t *testing.T) {
		r := cmSharedSecret(t, un, "user-shared-secret", "sUp3rs3kr1t", false)
		if r.status != 200 || r.str("user_id") != "@user-shared-secret:hs1" {
			t.Fatalf("got %d %s", r.status, r.body)
		}
	})
	t.Run("POST /_synapse/admin/v1/register with shared secret disallows symbols", func(t *testing.T) {
		cmWant(t, "us,er", cmSharedSecret(t, un, "us,er", "sUp3rs3kr1t", false), 400, "M_INVALID_USERNAME")
	})
	t.Run("POST /_synapse/admin/v1/register with shared secret downcases capitals", func(t *testing.T) {
		r := cmSharedSecret(t, un, "user-UPPER-shared-SECRET", "sUp3rs3kr1t", false)
		if r.status != 200 || r.str("user_id") != "@user-upper-shared-secret:hs1" || r.str("access_token") == "" {
			t.Fatalf("got %d %s", r.status, r.body)
		}
	})
	t.Run("Registration accepts non-ascii passwords", func(t *testing.T) {
		r := cmRegisterUIA(t, un, "test_user", "übers3kr1t",
			map[string]any{"device_id": "xyzzy", "initial_device_display_name": "display_name"})
		if r.status != 200 || r.str("access_token") == "" {
			t.Fatalf("got %d %s", r.status, r.body)
		}
	})
	t.Run("GET /register/available returns available for unregistered user name", func(t *testing.T) {
		r := un.do(t, "GET", cmV3("register", "available"), cmQuery(url.Values{"username": {"username_should_be_available"}}))
		if r.status != 200 || !r.get("available").Bool() {
			t.Fatalf("got %d %s", r.status, r.body)
		}
	})
	t.Run("GET /register/available returns M_USER_IN_USE for registered user name", func(t *testing.T) {
		c := d.register(t, "username_not_available", "", false)
		local := c.userID[1 : len(c.userID)-len(":hs1")]
		r := un.do(t, "GET", cmV3("register", "available"), cmQuery(url.Values{"username": {local}}))
		cmWant(t, "available", r, 400, "M_USER_IN_USE")
		if r.str("error") == "" {
			t.Fatalf("no error: %s", r.body)
		}
	})
	t.Run("GET /register/available returns M_INVALID_USERNAME for invalid user name", func(t *testing.T) {
		r := un.do(t, "GET", cmV3("register", "available"), cmQuery(url.Values{"username": {"username,should_not_be_valid"}}))
		cmWant(t, "available", r, 400, "M_INVALID_USERNAME")
	})
	t.Run("Registration without a session fails", func(t *testing.T) {
		body, session := cmStartUIA(t, un, "auth-requires-session", "sUp3rs3kr1t", nil)
		if session == "" {
			t.Skip("no session")
		}
		delete(body["auth"].(map[string]any), "session")
		cmWant(t, "no session", un.do(t, "POST", cmV3("register"), cmJSON(body)), 401, "")
	})
	t.Run("TestCanRegisterAdmin", func(t *testing.T) {
		d.register(t, "", "", true)
	})
}

func TestComplementRequestEncodingFails(t *testing.T) {
	d := cmDeploy(t)
	r := d.unauthed().do(t, "POST", cmV3("register"), cmRaw([]byte(`{ "test":"a`+"\x81"+`" }`)))
	cmWant(t, "invalid utf-8", r, 400, "M_NOT_JSON")
}

func TestComplementLogin(t *testing.T) {
	d := cmDeploy(t)
	un := d.unauthed()
	// RegisterUser(t, "hs1", "test_login_user", "superuser", false)
	cmWant(t, "register", cmRegisterUIA(t, un, "test_login_user", "superuser", nil), 200, "")
	login := func(user, password string, extra map[string]any) cmResp {
		body := map[string]any{"type": "m.login.password", "password": password,
			"identifier": map[string]any{"type": "m.id.user", "user": user}}
		for k, v := range extra {
			body[k] = v
		}
		return un.do(t, "POST", []string{"_matrix", "client", "r0", "login"}, cmJSON(body))
	}

	t.Run("GET /login yields a set of flows", func(t *testing.T) {
		r := un.do(t, "GET", []string{"_matrix", "client", "r0", "login"}, cmRaw([]byte(`{}`)))
		if r.status != 200 || r.header.Get("Content-Type") != "application/json" {
			t.Fatalf("got %d %v", r.status, r.header)
		}
		for _, f := range r.get("flows").Array() {
			if !f.Get("stages").IsArray() && f.Get("type").Raw == "" {
				t.Fatalf("flow without stages or type: %s", r.body)
			}
		}
	})
	t.Run("POST /login can login as user", func(t *testing.T) {
		r := login("@test_login_user:hs1", "superuser", nil)
		if r.status != 200 || r.str("access_token") == "" || r.str("home_server") != "hs1" {
			t.Fatalf("got %d %s", r.status, r.body)
		}
	})
	t.Run("POST /login returns the same device_id as that in the request", func(t *testing.T) {
		r := login("@test_login_user:hs1", "superuser", map[string]any{"device_id": "test_device_id"})
		if r.status != 200 || r.str("device_id") != "test_device_id" {
			t.Fatalf("got %d %s", r.status, r.body)
		}
	})
	t.Run("POST /login can log in as a user with just the local part of the id", func(t *testing.T) {
		r := login("test_login_user", "superuser", nil)
		if r.status != 200 || r.str("home_server") != "hs1" {
			t.Fatalf("got %d %s", r.status, r.body)
		}
	})
	t.Run("POST /login as non-existing user is rejected", func(t *testing.T) {
		cmWant(t, "login", login("i-dont-exist", "superuser", nil), 403, "")
	})
	t.Run("POST /login wrong password is rejected", func(t *testing.T) {
		cmWant(t, "login", login("@test_login_user:hs1", "wrong_password", nil), 403, "M_FORBIDDEN")
	})
	t.Run("Login with uppercase username works and GET /whoami afterwards also", func(t *testing.T) {
		r := login("@Test_login_user:hs1", "superuser", nil)
		cmWant(t, "login", r, 200, "")
		c := &cmClient{base: d.base, accessToken: r.str("access_token")}
		c.mustDo(t, "GET", []string{"_matrix", "client", "r0", "account", "whoami"})
	})
}
