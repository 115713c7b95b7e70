package clientapi

import (
	"container/list"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"encoding/hex"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/julienschmidt/httprouter"
)

// Shared-secret registration, as Synapse's /_synapse/admin/v1/register:
// GET hands out a single-use nonce; POST registers when
// mac = hex(HMAC-SHA1(secret, nonce \0 username \0 password \0 admin|notadmin
// [\0 user_type])). Nonces live in this node's memory.

const (
	nonceTTL       = 5 * time.Minute
	maxNonces      = 10000
	maxAdminFields = 512 // characters of username and password, as Synapse
)

// adminUserTypes are the user_type values Synapse accepts.
var adminUserTypes = map[string]bool{"support": true, "bot": true}

type nonceEntry struct {
	nonce   string
	created time.Time
}

// nonceStore is a bounded set of single-use nonces, oldest first.
type nonceStore struct {
	mu    sync.Mutex
	byVal map[string]*list.Element
	order *list.List
	now   func() time.Time
}

func newNonceStore() *nonceStore {
	return &nonceStore{byVal: map[string]*list.Element{}, order: list.New(), now: time.Now}
}

func (ns *nonceStore) issue() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	n := hex.EncodeToString(b)
	ns.mu.Lock()
	defer ns.mu.Unlock()
	ns.pruneLocked()
	for ns.order.Len() >= maxNonces {
		ns.removeLocked(ns.order.Front())
	}
	ns.byVal[n] = ns.order.PushBack(&nonceEntry{nonce: n, created: ns.now()})
	return n
}

// take consumes a nonce; it reports whether it was live.
func (ns *nonceStore) take(n string) bool {
	ns.mu.Lock()
	defer ns.mu.Unlock()
	ns.pruneLocked()
	e, ok := ns.byVal[n]
	if ok {
		ns.removeLocked(e)
	}
	return ok
}

func (ns *nonceStore) pruneLocked() {
	now := ns.now()
	for e := ns.order.Front(); e != nil && now.Sub(e.Value.(*nonceEntry).created) >= nonceTTL; e = ns.order.Front() {
		ns.removeLocked(e)
	}
}

func (ns *nonceStore) removeLocked(e *list.Element) {
	delete(ns.byVal, e.Value.(*nonceEntry).nonce)
	ns.order.Remove(e)
}

// adminRegisterNonce is GET /_synapse/admin/v1/register.
func (a *API) adminRegisterNonce(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	if a.cfg.Registration.SharedSecret == "" {
		writeError(w, http.StatusBadRequest, "M_UNKNOWN", "Shared secret registration is not enabled")
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"nonce": a.uia.nonces.issue()})
}

type adminRegisterRequest struct {
	Nonce        *string `json:"nonce"`
	Username     *string `json:"username"`
	Password     *string `json:"password"`
	Admin        bool    `json:"admin"`
	UserType     *string `json:"user_type"`
	DisplayName  string  `json:"displayname"`
	Mac          *string `json:"mac"`
	InhibitLogin bool    `json:"inhibit_login"`
}

// adminRegister is POST /_synapse/admin/v1/register.
func (a *API) adminRegister(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	secret := a.cfg.Registration.SharedSecret
	if secret == "" {
		writeError(w, http.StatusBadRequest, "M_UNKNOWN", "Shared secret registration is not enabled")
		return
	}
	var req adminRegisterRequest
	if !a.readJSON(w, r, &req) {
		return
	}
	if req.Nonce == nil {
		writeError(w, http.StatusBadRequest, "M_BAD_JSON", "nonce must be specified")
		return
	}
	// The nonce is spent even if the rest of the request is bad.
	if !a.uia.nonces.take(*req.Nonce) {
		writeError(w, http.StatusBadRequest, "M_UNKNOWN", "unrecognised nonce")
		return
	}
	if req.Username == nil {
		writeError(w, http.StatusBadRequest, "M_BAD_JSON", "username must be specified")
		return
	}
	if len([]rune(*req.Username)) > maxAdminFields || strings.ContainsRune(*req.Username, 0) {
		writeError(w, http.StatusBadRequest, "M_UNKNOWN", "Invalid username")
		return
	}
	if req.Password == nil {
		writeError(w, http.StatusBadRequest, "M_BAD_JSON", "password must be specified")
		return
	}
	if len([]rune(*req.Password)) > maxAdminFields || strings.ContainsRune(*req.Password, 0) {
		writeError(w, http.StatusBadRequest, "M_UNKNOWN", "Invalid password")
		return
	}
	userType := ""
	if req.UserType != nil {
		userType = *req.UserType
		if !adminUserTypes[userType] {
			writeError(w, http.StatusBadRequest, "M_UNKNOWN", "Invalid user type")
			return
		}
	}
	if req.Mac == nil {
		writeError(w, http.StatusBadRequest, "M_BAD_JSON", "mac must be specified")
		return
	}
	want := adminMAC(secret, *req.Nonce, *req.Username, *req.Password, req.Admin, userType)
	if !hmac.Equal([]byte(want), []byte(*req.Mac)) {
		writeError(w, http.StatusForbidden, "M_FORBIDDEN", "HMAC incorrect")
		return
	}
	localpart, herr := a.checkUsername(*req.Username)
	if herr != nil {
		writeErr(w, herr)
		return
	}
	if herr := checkPasswordShape(*req.Password); herr != nil {
		writeErr(w, herr)
		return
	}
	resp, err := a.createAccount(r.Context(), newAccount{
		localpart: localpart, password: *req.Password, admin: req.Admin, userType: userType,
		displayName: req.DisplayName, inhibitLogin: req.InhibitLogin, ip: peerIP(r),
	})
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

// adminMAC is Synapse's registration MAC, hex encoded.
func adminMAC(secret, nonce, username, password string, admin bool, userType string) string {
	m := hmac.New(sha1.New, []byte(secret))
	m.Write([]byte(nonce))
	m.Write([]byte{0})
	m.Write([]byte(username))
	m.Write([]byte{0})
	m.Write([]byte(password))
	m.Write([]byte{0})
	if admin {
		m.Write([]byte("admin"))
	} else {
		m.Write([]byte("notadmin"))
	}
	if userType != "" {
		m.Write([]byte{0})
		m.Write([]byte(userType))
	}
	return hex.EncodeToString(m.Sum(nil))
}
