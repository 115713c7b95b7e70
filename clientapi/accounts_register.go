package clientapi

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/julienschmidt/httprouter"

	"github.com/ganglion/ganglion/fsm"
)

const (
	maxDeviceIDLen          = 255
	maxDeviceDisplayNameLen = 100 // characters, as Synapse
	generatedLocalpartLen   = 12
)

type registerRequest struct {
	Auth                     json.RawMessage `json:"auth"`
	Username                 string          `json:"username"`
	Password                 string          `json:"password"`
	DeviceID                 string          `json:"device_id"`
	InitialDeviceDisplayName string          `json:"initial_device_display_name"`
	InhibitLogin             bool            `json:"inhibit_login"`
	RefreshToken             bool            `json:"refresh_token"` // no refresh tokens: ignored
}

// register is POST /register (user accounts, UIA with m.login.dummy).
func (a *API) register(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	switch kind := r.URL.Query().Get("kind"); kind {
	case "", "user":
	case "guest":
		writeError(w, http.StatusForbidden, "M_GUEST_ACCESS_FORBIDDEN", "Guest access is disabled")
		return
	default:
		writeError(w, http.StatusBadRequest, "M_INVALID_PARAM", "kind must be user or guest")
		return
	}
	if !a.cfg.Registration.Enabled {
		writeError(w, http.StatusForbidden, "M_FORBIDDEN", "Registration is disabled")
		return
	}
	if !a.requireUTF8Body(w, r) {
		return
	}
	var req registerRequest
	if !a.readJSON(w, r, &req) {
		return
	}
	// Checks that do not need authentication come before UIA (spec).
	var localpart string
	if req.Username != "" {
		var herr *fsm.Error
		if localpart, herr = a.checkUsername(req.Username); herr != nil {
			writeErr(w, herr)
			return
		}
	}
	if herr := checkDevice(req.DeviceID, req.InitialDeviceDisplayName); herr != nil {
		writeErr(w, herr)
		return
	}
	if herr := checkPasswordShape(req.Password); herr != nil {
		writeErr(w, herr)
		return
	}
	if !a.requireUIA(w, req.Auth, uiaRequest{endpoint: "POST /register", stage: stageDummy, subject: localpart}) {
		return
	}
	resp, err := a.createAccount(r.Context(), newAccount{
		localpart: localpart, password: req.Password,
		deviceID: req.DeviceID, deviceName: req.InitialDeviceDisplayName,
		inhibitLogin: req.InhibitLogin, ip: peerIP(r),
	})
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

// requireUTF8Body refuses a body that is not UTF-8 (which encoding/json
// would silently repair) with M_NOT_JSON, as the spec requires of JSON
// bodies, and leaves the body readable again.
func (a *API) requireUTF8Body(w http.ResponseWriter, r *http.Request) bool {
	body, ok := a.readBody(w, r)
	if !ok {
		return false
	}
	if !utf8.Valid(body) {
		writeError(w, http.StatusBadRequest, "M_NOT_JSON", "request body is not UTF-8")
		return false
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	return true
}

// registerAvailable is GET /register/available.
func (a *API) registerAvailable(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	if !a.cfg.Registration.Enabled {
		writeError(w, http.StatusForbidden, "M_FORBIDDEN", "Registration is disabled")
		return
	}
	q := r.URL.Query()
	if !q.Has("username") {
		writeError(w, http.StatusBadRequest, "M_MISSING_PARAM", "missing username")
		return
	}
	if _, herr := a.checkUsername(q.Get("username")); herr != nil {
		writeErr(w, herr)
		return
	}
	writeJSON(w, http.StatusOK, map[string]bool{"available": true})
}

// newAccount is what /register and the shared-secret admin API create.
type newAccount struct {
	localpart    string // "" to generate one
	password     string // "" for an account without password
	admin        bool
	userType     string
	displayName  string // "" defaults to the localpart
	deviceID     string // "" to generate one
	deviceName   string
	inhibitLogin bool
	ip           string
}

// createAccount hashes the password and the new access token, proposes the
// registration and returns the response body.
func (a *API) createAccount(ctx context.Context, acct newAccount) (map[string]any, error) {
	var pwHash string
	if acct.password != "" {
		var herr *fsm.Error
		if pwHash, herr = hashPassword(acct.password); herr != nil {
			return nil, herr
		}
	}
	generated := acct.localpart == ""
	for attempt := 0; ; attempt++ {
		localpart := acct.localpart
		if generated {
			localpart = randomString(generatedLocalpartLen, "abcdefghijklmnopqrstuvwxyz0123456789")
		}
		userID := a.localUserID(localpart)
		display := acct.displayName
		if display == "" {
			display = localpart
		}
		cmd := fsm.RegisterCmd{UserID: userID, PasswordHash: pwHash, Admin: acct.admin, UserType: acct.userType, DisplayName: display}
		var token string
		if !acct.inhibitLogin {
			deviceID := acct.deviceID
			if deviceID == "" {
				deviceID = newDeviceID()
			}
			token = newAccessToken()
			cmd.Device = &fsm.NewDevice{DeviceID: deviceID, DisplayName: acct.deviceName, TokenHash: HashToken(token), IP: acct.ip}
		}
		_, _, err := a.node.Propose(ctx, fsm.OpAccountRegister, cmd)
		var fe *fsm.Error
		if generated && attempt < 3 && errors.As(err, &fe) && fe.Errcode == "M_USER_IN_USE" {
			continue
		}
		if err != nil {
			return nil, err
		}
		resp := map[string]any{"user_id": userID, "home_server": a.cfg.ServerName}
		if cmd.Device != nil {
			resp["access_token"] = token
			resp["device_id"] = cmd.Device.DeviceID
		}
		return resp, nil
	}
}

// checkUsername maps a requested username to a localpart (lower-casing it,
// as the spec's mapping suggests) and checks the grammar and availability.
func (a *API) checkUsername(username string) (string, *fsm.Error) {
	localpart := strings.ToLower(username)
	if !validLocalpart(localpart) {
		return "", fsm.Errorf(http.StatusBadRequest, "M_INVALID_USERNAME",
			"User ID can only contain characters a-z, 0-9, or '=_-./+'")
	}
	if len(a.localUserID(localpart)) > 255 {
		return "", fsm.Errorf(http.StatusBadRequest, "M_INVALID_USERNAME", "User ID is too long")
	}
	var taken bool
	_ = a.store.View(func(rt *fsm.ReadTx) error {
		_, err := rt.User(a.localUserID(localpart))
		taken = err == nil
		return nil
	})
	if taken {
		return "", fsm.Errorf(http.StatusBadRequest, "M_USER_IN_USE", "User ID already taken.")
	}
	return localpart, nil
}

// validLocalpart is the user ID localpart grammar: 1*(a-z / 0-9 / -._=/+).
func validLocalpart(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || strings.IndexByte("-._=/+", c) >= 0) {
			return false
		}
	}
	return true
}

// checkDevice validates a client-chosen device ID and display name.
func checkDevice(deviceID, displayName string) *fsm.Error {
	if len(deviceID) > maxDeviceIDLen {
		return fsm.Errorf(http.StatusBadRequest, "M_INVALID_PARAM", "device_id is too long")
	}
	for _, c := range deviceID {
		if c < 0x20 || c == 0x7f {
			return fsm.Errorf(http.StatusBadRequest, "M_INVALID_PARAM", "device_id contains control characters")
		}
	}
	if utf8.RuneCountInString(displayName) > maxDeviceDisplayNameLen {
		return fsm.Errorf(http.StatusBadRequest, "M_TOO_LARGE", "Device display name is too long (max 100)")
	}
	return nil
}

// checkPasswordShape is hashPassword's validation without the hashing, for
// checks made before UIA.
func checkPasswordShape(password string) *fsm.Error {
	// bcrypt reads at most 72 bytes: refuse rather than ignore the rest.
	if len(password) > 72 {
		return fsm.Errorf(http.StatusBadRequest, "M_INVALID_PARAM", "password must be at most 72 bytes")
	}
	if strings.ContainsRune(password, 0) {
		return fsm.Errorf(http.StatusBadRequest, "M_INVALID_PARAM", "password must not contain NUL")
	}
	return nil
}

func (a *API) localUserID(localpart string) string {
	return "@" + localpart + ":" + a.cfg.ServerName
}

// randomString draws n characters of alphabet from crypto/rand.
func randomString(n int, alphabet string) string {
	out := make([]byte, 0, n)
	limit := 256 - 256%len(alphabet) // reject bytes that would bias the draw
	buf := make([]byte, n)
	for len(out) < n {
		_, _ = rand.Read(buf) // never fails (crypto/rand)
		for _, c := range buf {
			if int(c) < limit && len(out) < n {
				out = append(out, alphabet[int(c)%len(alphabet)])
			}
		}
	}
	return string(out)
}

// newDeviceID is a Synapse-style device ID: ten upper-case letters.
func newDeviceID() string { return randomString(10, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") }

// newAccessToken is 130 random bits; only its sha256 is ever proposed.
func newAccessToken() string { return "gla_" + rand.Text() }

// peerIP is the peer address of the request, recorded as last_seen_ip.
func peerIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
