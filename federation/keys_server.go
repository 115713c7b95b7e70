package federation

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/julienschmidt/httprouter"
	mfed "maunium.net/go/mautrix/federation"
	"maunium.net/go/mautrix/id"
)

// keyDocument is a server's key document (definitions/keys.yaml). Ours
// always lists old_verify_keys, empty or not, as Synapse does.
type keyDocument struct {
	ServerName    string                            `json:"server_name"`
	VerifyKeys    map[id.KeyID]mfed.ServerVerifyKey `json:"verify_keys"`
	OldVerifyKeys map[id.KeyID]mfed.OldVerifyKey    `json:"old_verify_keys"`
	Signatures    map[string]map[id.KeyID]string    `json:"signatures,omitempty"`
	ValidUntilTS  int64                             `json:"valid_until_ts"`
}

// ownKeyDocument is our key document, valid for cfg.KeyValidity from now
// and signed with the current key.
func (a *API) ownKeyDocument(now time.Time) (json.RawMessage, error) {
	key, err := a.keys.Current()
	if err != nil {
		return nil, err
	}
	doc := keyDocument{
		ServerName:    a.cfg.ServerName,
		VerifyKeys:    map[id.KeyID]mfed.ServerVerifyKey{key.ID: {Key: key.Pub}},
		OldVerifyKeys: map[id.KeyID]mfed.OldVerifyKey{},
		ValidUntilTS:  now.Add(a.cfg.KeyValidity).UnixMilli(),
	}
	for kid, old := range a.keys.Old() {
		if kid != key.ID {
			doc.OldVerifyKeys[kid] = old
		}
	}
	return signDocument(doc, a.cfg.ServerName, key)
}

// signDocument signs the bytes it returns (not a second encoding of doc,
// which json/v2 could write differently, e.g. a nil map as {}).
func signDocument(doc keyDocument, server string, key *mfed.SigningKey) (json.RawMessage, error) {
	doc.Signatures = nil
	unsigned, err := json.Marshal(doc)
	if err != nil {
		return nil, err
	}
	sig, err := key.SignJSON(json.RawMessage(unsigned))
	if err != nil {
		return nil, err
	}
	doc.Signatures = map[string]map[id.KeyID]string{server: {key.ID: sig}}
	return json.Marshal(doc)
}

// serverKeys is GET /_matrix/key/v2/server (and the deprecated
// /server/{keyId}, which answers with every key as Synapse does).
func (a *API) serverKeys(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	doc, err := a.ownKeyDocument(a.keyring.now())
	if err != nil {
		a.log.Warn("cannot serve our keys", "error", err)
		writeError(w, http.StatusServiceUnavailable, "M_UNKNOWN", "the server's signing key is not available yet")
		return
	}
	writeRaw(w, http.StatusOK, doc)
}

// writeRaw writes an already encoded JSON body.
func writeRaw(w http.ResponseWriter, status int, body json.RawMessage) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// version is GET /_matrix/federation/v1/version.
func (a *API) version(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	writeJSON(w, http.StatusOK, mfed.RespServerVersion{
		Server: mfed.ServerVersion{Name: serverSoftwareName, Version: a.cfg.Version}})
}

// wellKnownServer is GET /.well-known/matrix/server: the delegation target
// when configured, else 404 (senders then use SRV or port 8448).
func (a *API) wellKnownServer(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	if a.cfg.WellKnownServer == "" {
		writeError(w, http.StatusNotFound, "M_NOT_FOUND", "no delegation configured")
		return
	}
	writeJSON(w, http.StatusOK, mfed.RespWellKnown{Server: a.cfg.WellKnownServer})
}
