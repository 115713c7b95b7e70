package federation

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/julienschmidt/httprouter"
	"github.com/tidwall/sjson"
	"go.mau.fi/util/exgjson"
	"maunium.net/go/mautrix/crypto/canonicaljson"
	mfed "maunium.net/go/mautrix/federation"
	"maunium.net/go/mautrix/id"
)

const (
	maxNotaryServers     = 100 // servers in one POST /query
	notaryFetchWorkers   = 8
	notaryRequestTimeout = 45 * time.Second
)

// notaryQuery is what is asked of one server's keys.
type notaryQuery struct {
	server   string
	keyIDs   []id.KeyID
	minValid time.Time
}

// queryKeysGet is GET /_matrix/key/v2/query/{serverName}.
func (a *API) queryKeysGet(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
	minValid := a.keyring.now()
	if s := r.URL.Query().Get("minimum_valid_until_ts"); s != "" {
		ms, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			writeError(w, http.StatusBadRequest, "M_INVALID_PARAM", "minimum_valid_until_ts must be an integer")
			return
		}
		minValid = time.UnixMilli(ms)
	}
	docs := a.notaryDocuments(r.Context(), []notaryQuery{{server: p.ByName("serverName"), minValid: minValid}})
	writeJSON(w, http.StatusOK, map[string]any{"server_keys": docs})
}

// queryKeysPost is POST /_matrix/key/v2/query.
func (a *API) queryKeysPost(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	var req struct {
		ServerKeys map[string]map[id.KeyID]struct {
			MinimumValidUntilTS int64 `json:"minimum_valid_until_ts"`
		} `json:"server_keys"`
	}
	if !a.readJSON(w, r, &req) {
		return
	}
	if req.ServerKeys == nil {
		writeError(w, http.StatusBadRequest, "M_BAD_JSON", "server_keys is required")
		return
	}
	if len(req.ServerKeys) > maxNotaryServers {
		writeError(w, http.StatusBadRequest, "M_INVALID_PARAM", "at most "+strconv.Itoa(maxNotaryServers)+" servers per query")
		return
	}
	now := a.keyring.now()
	queries := make([]notaryQuery, 0, len(req.ServerKeys))
	for server, criteria := range req.ServerKeys {
		q := notaryQuery{server: server, minValid: now}
		for keyID, c := range criteria {
			q.keyIDs = append(q.keyIDs, keyID)
			if c.MinimumValidUntilTS > q.minValid.UnixMilli() {
				q.minValid = time.UnixMilli(c.MinimumValidUntilTS)
			}
		}
		queries = append(queries, q)
	}
	slices.SortFunc(queries, func(x, y notaryQuery) int { return strings.Compare(x.server, y.server) })
	docs := a.notaryDocuments(r.Context(), queries)
	writeJSON(w, http.StatusOK, map[string]any{"server_keys": docs})
}

// notaryDocuments answers each query with the server's newest key document
// (fetched when missing or stale, the last one when the server is down),
// each additionally signed by us. Our own document is served as is.
func (a *API) notaryDocuments(ctx context.Context, queries []notaryQuery) []json.RawMessage {
	ctx, cancel := context.WithTimeout(ctx, notaryRequestTimeout)
	defer cancel()
	key, keyErr := a.keys.Current()
	results := make([]json.RawMessage, len(queries))
	sem := make(chan struct{}, notaryFetchWorkers)
	var wg sync.WaitGroup
	for i, q := range queries {
		if _, _, ok := mfed.ParseServerName(q.server); !ok {
			continue
		}
		if q.server == a.cfg.ServerName {
			if doc, err := a.ownKeyDocument(a.keyring.now()); err == nil {
				results[i] = doc
			}
			continue
		}
		if keyErr != nil {
			continue // we cannot vouch for anything without our key
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			doc := a.keyring.Document(ctx, q.server, q.keyIDs, q.minValid)
			if doc == nil {
				return
			}
			signed, err := countersign(doc, a.cfg.ServerName, key)
			if err != nil {
				a.log.Warn("cannot countersign key document", "server", q.server, "error", err)
				return
			}
			results[i] = signed
		}()
	}
	wg.Wait()
	out := make([]json.RawMessage, 0, len(results))
	for _, doc := range results {
		if doc != nil {
			out = append(out, doc)
		}
	}
	return out
}

// countersign adds signer's signature to a key document without touching
// the rest, so the origin's own signature still verifies.
func countersign(doc json.RawMessage, signer string, key *mfed.SigningKey) (json.RawMessage, error) {
	msg, err := sjson.DeleteBytes(bytes.Clone(doc), "signatures")
	if err != nil {
		return nil, err
	}
	if msg, err = sjson.DeleteBytes(msg, "unsigned"); err != nil {
		return nil, err
	}
	canon := json.RawMessage(msg)
	if err := canonicaljson.Canonicalize(&canon); err != nil {
		return nil, err
	}
	sig := base64.RawStdEncoding.EncodeToString(key.SignCanonicalJSON(canon))
	return sjson.SetBytes(bytes.Clone(doc), exgjson.Path("signatures", signer, string(key.ID)), sig)
}
