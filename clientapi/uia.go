package clientapi

import (
	"container/list"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/ganglion/ganglion/fsm"
)

// User-Interactive Authentication (client-server spec, "User-Interactive
// Authentication API"). Every flow we offer has one stage that completes in
// the request that carries it (m.login.dummy, m.login.password), so a
// session records only what it was issued for. Sessions live in this node's
// memory: a session ID this node does not know (issued by another node, or
// expired) is accepted as long as the stage itself succeeds, since nothing
// of the flow's progress is lost with it.

const (
	uiaTTL         = 10 * time.Minute
	uiaMaxSessions = 10000

	stageDummy    = "m.login.dummy"
	stagePassword = "m.login.password"

	// bcryptCost is the work factor of stored password hashes.
	bcryptCost = 10
)

type uiaSession struct {
	id       string
	endpoint string // what the session was issued for, e.g. "POST /register"
	userID   string // "" when unauthenticated (registration)
	subject  string // what an unauthenticated request asked for (the username); may be ""
	created  time.Time
	elem     *list.Element
}

// uiaSessions is the bounded, expiring set of UIA sessions of this node. It
// also holds the shared-secret registration nonces, the other short-lived
// authentication state of the accounts area.
type uiaSessions struct {
	nonces *nonceStore

	mu   sync.Mutex
	byID map[string]*uiaSession
	// bySubject finds the live session issued for an endpoint and subject,
	// so that a retry which drops the session it was given is refused.
	bySubject map[string]*uiaSession
	order     *list.List // of *uiaSession, oldest first
	now       func() time.Time
	max       int
}

func newUIASessions() *uiaSessions {
	return &uiaSessions{
		nonces: newNonceStore(),
		byID:   map[string]*uiaSession{}, bySubject: map[string]*uiaSession{},
		order: list.New(), now: time.Now, max: uiaMaxSessions,
	}
}

// create issues a new session, evicting expired ones and, when full, the
// oldest.
func (s *uiaSessions) create(endpoint, userID string) string {
	return s.createFor(endpoint, userID, "")
}

// createFor is create for a request about subject (see issuedFor).
func (s *uiaSessions) createFor(endpoint, userID, subject string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	s.pruneLocked(now)
	for len(s.byID) >= s.max {
		s.removeLocked(s.order.Front().Value.(*uiaSession))
	}
	sess := &uiaSession{id: rand.Text(), endpoint: endpoint, userID: userID, subject: subject, created: now}
	sess.elem = s.order.PushBack(sess)
	s.byID[sess.id] = sess
	if subject != "" {
		s.bySubject[subjectKey(endpoint, subject)] = sess
	}
	return sess.id
}

// issuedFor returns the live session issued for an endpoint and subject.
func (s *uiaSessions) issuedFor(endpoint, subject string) (string, bool) {
	if subject == "" {
		return "", false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pruneLocked(s.now())
	sess, ok := s.bySubject[subjectKey(endpoint, subject)]
	if !ok {
		return "", false
	}
	return sess.id, true
}

func subjectKey(endpoint, subject string) string { return endpoint + "\x00" + subject }

// lookup returns a live session.
func (s *uiaSessions) lookup(id string) (uiaSession, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pruneLocked(s.now())
	sess, ok := s.byID[id]
	if !ok {
		return uiaSession{}, false
	}
	return *sess, true
}

// finish forgets a session whose flow completed: it cannot authorise a
// second request.
func (s *uiaSessions) finish(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sess, ok := s.byID[id]; ok {
		s.removeLocked(sess)
	}
}

func (s *uiaSessions) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.byID)
}

func (s *uiaSessions) pruneLocked(now time.Time) {
	for e := s.order.Front(); e != nil; e = s.order.Front() {
		sess := e.Value.(*uiaSession)
		if now.Sub(sess.created) < uiaTTL {
			return
		}
		s.removeLocked(sess)
	}
}

func (s *uiaSessions) removeLocked(sess *uiaSession) {
	s.order.Remove(sess.elem)
	delete(s.byID, sess.id)
	if k := subjectKey(sess.endpoint, sess.subject); sess.subject != "" && s.bySubject[k] == sess {
		delete(s.bySubject, k)
	}
}

// authDict is the request's "auth" object, for the stages we offer.
type authDict struct {
	Type       string          `json:"type"`
	Session    string          `json:"session"`
	Identifier *userIdentifier `json:"identifier"`
	User       string          `json:"user"` // legacy, instead of identifier
	Password   string          `json:"password"`
}

// userIdentifier is the spec's "identifier" object.
type userIdentifier struct {
	Type    string `json:"type"`
	User    string `json:"user"`
	Medium  string `json:"medium"`
	Address string `json:"address"`
}

// uiaRequest describes one endpoint's UIA: the single stage it requires and,
// for m.login.password, the user who must authenticate. subject names what
// an unauthenticated request asks for (the username at registration).
type uiaRequest struct {
	endpoint string
	stage    string
	userID   string
	subject  string
}

// requireUIA runs User-Interactive Authentication for a request whose body
// carried auth (raw, possibly absent). It returns true when the stage is
// complete; otherwise it has written the 401 (or other error) response.
func (a *API) requireUIA(w http.ResponseWriter, raw json.RawMessage, req uiaRequest) bool {
	if len(raw) == 0 || string(raw) == "null" {
		a.writeUIA(w, req, a.uia.createFor(req.endpoint, req.userID, req.subject), nil)
		return false
	}
	var auth authDict
	if err := json.Unmarshal(raw, &auth); err != nil {
		writeError(w, http.StatusBadRequest, "M_BAD_JSON", "auth must be an object: "+err.Error())
		return false
	}
	session := auth.Session
	if session != "" {
		if sess, ok := a.uia.lookup(session); ok && (sess.endpoint != req.endpoint || sess.userID != req.userID) {
			writeError(w, http.StatusForbidden, "M_FORBIDDEN",
				"Requested operation has changed during the UI authentication session.")
			return false
		}
	} else if issued, ok := a.uia.issuedFor(req.endpoint, req.subject); ok {
		// The spec: a session the server gave out must be carried by the
		// retries of that request (Complement "Registration without a
		// session fails"). Clients that never asked for one need none.
		a.writeUIA(w, req, issued, &matrixError{Errcode: "M_MISSING_PARAM",
			Error: "auth.session is required: this server issued one for this request"})
		return false
	} else {
		session = a.uia.create(req.endpoint, req.userID)
	}
	fail := func(errcode, msg string) bool {
		a.writeUIA(w, req, session, &matrixError{Errcode: errcode, Error: msg})
		return false
	}
	if auth.Type == "" {
		// Retry of an out-of-band stage: none of ours completes that way.
		return fail("M_FORBIDDEN", "authentication is not complete")
	}
	if auth.Type != req.stage {
		return fail("M_UNRECOGNIZED", "unsupported authentication type "+auth.Type)
	}
	if req.stage == stagePassword {
		userID, herr := a.identifiedUser(auth.Identifier, auth.User, req.userID)
		if herr != nil {
			if herr.Status == http.StatusForbidden {
				return fail(herr.Errcode, herr.Message)
			}
			writeErr(w, herr)
			return false
		}
		if userID != req.userID {
			writeError(w, http.StatusForbidden, "M_FORBIDDEN", "authenticated user does not match the access token")
			return false
		}
		if _, ok := a.checkPassword(userID, auth.Password); !ok {
			return fail("M_FORBIDDEN", "Invalid username or password")
		}
	}
	a.uia.finish(session)
	return true
}

func (a *API) writeUIA(w http.ResponseWriter, req uiaRequest, session string, e *matrixError) {
	body := map[string]any{
		"flows":   []map[string]any{{"stages": []string{req.stage}}},
		"params":  map[string]any{},
		"session": session,
	}
	if e != nil {
		body["errcode"], body["error"] = e.Errcode, e.Error
	}
	writeJSON(w, http.StatusUnauthorized, body)
}

// identifiedUser resolves a login identifier (or the legacy "user" field)
// to a local user ID. With neither, it falls back to def ("" means missing).
func (a *API) identifiedUser(id *userIdentifier, legacy, def string) (string, *fsm.Error) {
	name := legacy
	if id != nil {
		switch id.Type {
		case "m.id.user":
			name = id.User
		case "m.id.thirdparty", "m.id.phone":
			// No third-party identifiers are bound on this server.
			return "", fsm.Errorf(http.StatusForbidden, "M_FORBIDDEN", "Unknown third-party identifier")
		default:
			return "", fsm.Errorf(http.StatusBadRequest, "M_UNKNOWN", "Unknown identifier type %q", id.Type)
		}
	}
	if name == "" {
		if def != "" {
			return def, nil
		}
		return "", fsm.Errorf(http.StatusBadRequest, "M_MISSING_PARAM", "missing user identifier")
	}
	userID, ok := a.qualifyUser(name)
	if !ok {
		return "", fsm.Errorf(http.StatusForbidden, "M_FORBIDDEN", "Invalid username or password")
	}
	return userID, nil
}

// qualifyUser maps a localpart or full user ID to a local user ID; user IDs
// here are lower-case, so the localpart is lower-cased like at registration.
func (a *API) qualifyUser(name string) (string, bool) {
	local := name
	if rest, ok := strings.CutPrefix(name, "@"); ok {
		var domain string
		local, domain, ok = strings.Cut(rest, ":")
		if !ok || domain != a.cfg.ServerName {
			return "", false
		}
	}
	local = strings.ToLower(local)
	if local == "" {
		return "", false
	}
	return a.localUserID(local), true
}

// dummyHash keeps a login for an unknown user as slow as one for a known
// user with a wrong password.
var dummyHash = sync.OnceValue(func() []byte {
	h, _ := bcrypt.GenerateFromPassword([]byte("ganglion-dummy-password"), bcryptCost)
	return h
})

// checkPassword verifies a password against the stored hash. It returns the
// user record (nil if unknown) and whether the password matches.
func (a *API) checkPassword(userID, password string) (*fsm.UserRecord, bool) {
	var u *fsm.UserRecord
	_ = a.store.View(func(rt *fsm.ReadTx) error {
		u, _ = rt.User(userID)
		return nil
	})
	if u == nil || u.PasswordHash == "" || password == "" {
		_ = bcrypt.CompareHashAndPassword(dummyHash(), []byte(password))
		return u, false
	}
	return u, bcrypt.CompareHashAndPassword([]byte(u.PasswordHash), []byte(password)) == nil
}

// hashPassword bcrypts a new password before it is proposed (invariant 1).
func hashPassword(password string) (string, *fsm.Error) {
	if herr := checkPasswordShape(password); herr != nil {
		return "", herr
	}
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcryptCost)
	if err != nil {
		return "", fsm.Errorf(http.StatusInternalServerError, "M_UNKNOWN", "could not hash password")
	}
	return string(h), nil
}
