package clientapi

import (
	"encoding/json"
	"net/http"

	"github.com/julienschmidt/httprouter"

	"github.com/ganglion/ganglion/fsm"
)

// loginFlows is GET /login.
func (a *API) loginFlows(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	writeJSON(w, http.StatusOK, map[string]any{
		"flows": []map[string]string{{"type": stagePassword}},
	})
}

type loginRequest struct {
	Type                     string          `json:"type"`
	Identifier               *userIdentifier `json:"identifier"`
	User                     string          `json:"user"`    // deprecated
	Medium                   string          `json:"medium"`  // deprecated
	Address                  string          `json:"address"` // deprecated
	Password                 *string         `json:"password"`
	DeviceID                 string          `json:"device_id"`
	InitialDeviceDisplayName string          `json:"initial_device_display_name"`
	RefreshToken             bool            `json:"refresh_token"` // no refresh tokens: ignored
}

// login is POST /login with m.login.password.
func (a *API) login(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	var req loginRequest
	if !a.readJSON(w, r, &req) {
		return
	}
	if req.Type != stagePassword {
		writeError(w, http.StatusBadRequest, "M_UNKNOWN", "Bad login type.")
		return
	}
	id := req.Identifier
	if id == nil && req.User == "" && req.Medium != "" {
		id = &userIdentifier{Type: "m.id.thirdparty", Medium: req.Medium, Address: req.Address}
	}
	userID, herr := a.identifiedUser(id, req.User, "")
	if herr != nil {
		writeErr(w, herr)
		return
	}
	if req.Password == nil {
		writeError(w, http.StatusBadRequest, "M_MISSING_PARAM", "missing password")
		return
	}
	if herr := checkDevice(req.DeviceID, req.InitialDeviceDisplayName); herr != nil {
		writeErr(w, herr)
		return
	}
	u, ok := a.checkPassword(userID, *req.Password)
	if !ok {
		writeError(w, http.StatusForbidden, "M_FORBIDDEN", "Invalid username or password")
		return
	}
	if u.Deactivated {
		writeError(w, http.StatusForbidden, "M_USER_DEACTIVATED", "This account has been deactivated")
		return
	}
	deviceID := req.DeviceID
	if deviceID == "" {
		deviceID = newDeviceID()
	}
	token := newAccessToken()
	cmd := fsm.LoginCmd{UserID: userID, PasswordHash: u.PasswordHash, Device: fsm.NewDevice{
		DeviceID: deviceID, DisplayName: req.InitialDeviceDisplayName, TokenHash: HashToken(token), IP: peerIP(r),
	}}
	if _, ok := a.propose(w, r.Context(), fsm.OpAccountLogin, cmd); !ok {
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"user_id":      userID,
		"access_token": token,
		"device_id":    deviceID,
		"home_server":  a.cfg.ServerName,
	})
}

// logout is POST /logout: the caller's device and token go.
func (a *API) logout(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	c := callerOf(r)
	if _, ok := a.propose(w, r.Context(), fsm.OpAccountLogout, fsm.LogoutCmd{UserID: c.UserID, DeviceID: c.DeviceID}); !ok {
		return
	}
	writeJSON(w, http.StatusOK, struct{}{})
}

// logoutAll is POST /logout/all: every device and token of the caller go.
func (a *API) logoutAll(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	c := callerOf(r)
	if _, ok := a.propose(w, r.Context(), fsm.OpAccountLogoutAll, fsm.LogoutAllCmd{UserID: c.UserID}); !ok {
		return
	}
	writeJSON(w, http.StatusOK, struct{}{})
}

// whoami is GET /account/whoami.
func (a *API) whoami(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	c := callerOf(r)
	writeJSON(w, http.StatusOK, map[string]any{"user_id": c.UserID, "device_id": c.DeviceID, "is_guest": false})
}

type changePasswordRequest struct {
	NewPassword   *string         `json:"new_password"`
	LogoutDevices *bool           `json:"logout_devices"`
	Auth          json.RawMessage `json:"auth"`
}

// changePassword is POST /account/password (UIA with m.login.password). It
// is routed without the auth middleware so that UIA can answer 401 itself;
// an access token is still required.
func (a *API) changePassword(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	c, ok := a.tokenCaller(w, r)
	if !ok {
		return
	}
	var req changePasswordRequest
	if !a.readJSON(w, r, &req) {
		return
	}
	if req.NewPassword == nil || *req.NewPassword == "" {
		writeError(w, http.StatusBadRequest, "M_MISSING_PARAM", "missing new_password")
		return
	}
	if herr := checkPasswordShape(*req.NewPassword); herr != nil {
		writeErr(w, herr)
		return
	}
	if !a.requireUIA(w, req.Auth, uiaRequest{endpoint: "POST /account/password", stage: stagePassword, userID: c.UserID}) {
		return
	}
	hash, herr := hashPassword(*req.NewPassword)
	if herr != nil {
		writeErr(w, herr)
		return
	}
	logout := req.LogoutDevices == nil || *req.LogoutDevices
	cmd := fsm.SetPasswordCmd{UserID: c.UserID, PasswordHash: hash, LogoutDevices: logout, KeepDevice: c.DeviceID}
	if _, ok := a.propose(w, r.Context(), fsm.OpAccountSetPassword, cmd); !ok {
		return
	}
	writeJSON(w, http.StatusOK, struct{}{})
}

type deactivateRequest struct {
	Auth     json.RawMessage `json:"auth"`
	IDServer string          `json:"id_server"`
	Erase    bool            `json:"erase"`
}

// deactivate is POST /account/deactivate (UIA with m.login.password): the
// account is marked deactivated, its devices and tokens deleted, and then
// it leaves its rooms.
func (a *API) deactivate(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	c, ok := a.tokenCaller(w, r)
	if !ok {
		return
	}
	var req deactivateRequest
	if !a.readJSON(w, r, &req) {
		return
	}
	if !a.requireUIA(w, req.Auth, uiaRequest{endpoint: "POST /account/deactivate", stage: stagePassword, userID: c.UserID}) {
		return
	}
	if _, ok := a.propose(w, r.Context(), fsm.OpAccountDeactivate, fsm.DeactivateCmd{UserID: c.UserID, Erase: req.Erase}); !ok {
		return
	}
	a.leaveAllRooms(r.Context(), c.UserID)
	// No third-party identifiers are ever bound here, and the spec says the
	// result "must be success if the homeserver has no identifiers to unbind".
	writeJSON(w, http.StatusOK, map[string]string{"id_server_unbind_result": "success"})
}
