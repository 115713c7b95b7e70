package federation

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"

	"github.com/julienschmidt/httprouter"
	"maunium.net/go/mautrix/crypto/canonicaljson"
	mfed "maunium.net/go/mautrix/federation"
	"maunium.net/go/mautrix/federation/signutil"
)

type originKey struct{}

// Origin is the server that signed the request, on routes that require
// X-Matrix authentication ("" elsewhere).
func Origin(r *http.Request) string { return OriginFromContext(r.Context()) }

// OriginFromContext is Origin for a request's context.
func OriginFromContext(ctx context.Context) string {
	s, _ := ctx.Value(originKey{}).(string)
	return s
}

// signedRequest is the JSON a request signature covers.
type signedRequest struct {
	Method      string          `json:"method"`
	URI         string          `json:"uri"`
	Origin      string          `json:"origin"`
	Destination string          `json:"destination"`
	Content     json.RawMessage `json:"content,omitempty"`
}

// authenticated wraps a handler with request authentication: the X-Matrix
// header parsed, its destination (when given) this server, the origin's key
// current and valid now, the signature over {method, uri, origin,
// destination, content} good. The body is read (bounded) and handed on.
func (a *API) authenticated(h handler) handler {
	return func(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
		origin, body, merr := a.verifyRequest(r)
		if merr != nil {
			a.log.Debug("request refused", "path", r.URL.Path, "errcode", merr.Errcode, "error", merr.Err)
			writeMatrixError(w, merr)
			return
		}
		r = r.WithContext(context.WithValue(r.Context(), originKey{}, origin))
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
		h(w, r, p)
	}
}

// verifyRequest returns the request's authenticated origin and its body.
func (a *API) verifyRequest(r *http.Request) (string, []byte, *matrixError) {
	header := ""
	for _, v := range r.Header.Values("Authorization") {
		if scheme, _, _ := strings.Cut(v, " "); strings.EqualFold(scheme, "X-Matrix") {
			header = v
			break
		}
	}
	if header == "" {
		return "", nil, unauthorized("missing X-Matrix Authorization header")
	}
	xm, err := ParseXMatrix(header)
	if err != nil {
		return "", nil, unauthorized(err.Error())
	}
	if xm.Destination != "" && xm.Destination != a.cfg.ServerName {
		return "", nil, unauthorized("destination " + xm.Destination + " is not this server")
	}
	if _, _, ok := mfed.ParseServerName(xm.Origin); !ok {
		return "", nil, unauthorized("origin is not a valid server name")
	}
	if xm.Origin == a.cfg.ServerName {
		return "", nil, unauthorized("origin is this server")
	}
	if !isEd25519KeyID(xm.KeyID) {
		return "", nil, unauthorized("key " + string(xm.KeyID) + " is not an ed25519 key ID")
	}
	body, merr := readBody(r, a.cfg.MaxRequestBytes)
	if merr != nil {
		return "", nil, merr
	}
	now := a.keyring.now()
	sk, err := a.keyring.Key(r.Context(), xm.Origin, xm.KeyID, now)
	switch {
	case errors.Is(err, ErrKeyNotFound):
		return "", nil, unauthorized("unknown key " + string(xm.KeyID) + " of " + xm.Origin)
	case err != nil:
		return "", nil, unauthorized("could not get the keys of " + xm.Origin)
	case sk.Expired:
		return "", nil, unauthorized("key " + string(xm.KeyID) + " of " + xm.Origin + " is retired")
	case sk.ValidUntil.Before(now):
		return "", nil, unauthorized("key " + string(xm.KeyID) + " of " + xm.Origin + " has expired")
	}
	msg, err := canonicaljson.Marshal(signedRequest{Method: r.Method, URI: requestURI(r),
		Origin: xm.Origin, Destination: a.cfg.ServerName, Content: body})
	if err != nil {
		return "", nil, errorf(http.StatusBadRequest, "M_NOT_JSON", "request body is not valid JSON")
	}
	if signutil.VerifyJSONCanonical(sk.Key, xm.Signature, msg) != nil {
		return "", nil, unauthorized("bad request signature")
	}
	return xm.Origin, body, nil
}

// requestURI is the target as the sender wrote it (path and query, still
// escaped), which is what it signed.
func requestURI(r *http.Request) string {
	if strings.HasPrefix(r.RequestURI, "/") {
		return r.RequestURI
	}
	return r.URL.RequestURI()
}

// SignRequest adds an X-Matrix Authorization header to req, signed by
// origin's key for destination; body is the JSON body req carries (nil for
// none). For tests and fake remote servers: the Client signs on its own.
func SignRequest(req *http.Request, origin, destination string, key *mfed.SigningKey, body []byte) error {
	msg, err := canonicaljson.Marshal(signedRequest{Method: req.Method, URI: req.URL.RequestURI(),
		Origin: origin, Destination: destination, Content: body})
	if err != nil {
		return err
	}
	sig := base64.RawStdEncoding.EncodeToString(key.SignCanonicalJSON(msg))
	req.Header.Set("Authorization", FormatXMatrix(mfed.XMatrixAuth{
		Origin: origin, Destination: destination, KeyID: key.ID, Signature: sig}))
	return nil
}
