package federation

import "net/http"

// route is one endpoint: full path (httprouter syntax), handler, and
// whether the request must carry a valid X-Matrix signature.
type route struct {
	method string
	path   string
	h      handler
	auth   bool
}

const (
	get  = http.MethodGet
	post = http.MethodPost
	put  = http.MethodPut
)

// open is an endpoint anyone may call (keys, version).
func open(method, path string, h handler) route {
	return route{method: method, path: path, h: h}
}

// signed is an endpoint that requires request authentication; the handler
// reads the origin with Origin(r) and the (bounded, verified) body from
// r.Body.
func signed(method, path string, h handler) route {
	return route{method: method, path: path, h: h, auth: true}
}

const (
	keyV2 = "/_matrix/key/v2"
	fedV1 = "/_matrix/federation/v1"
	fedV2 = "/_matrix/federation/v2"
)

// routes is THE route table of the Server-Server API. Adding an endpoint
// is one line here and its handler in a file of its own. A signed route's
// handler has the verified origin in Origin(r) and the verified body in
// r.Body (a.readJSON decodes it); path parameters come URL-decoded
// (p.ByName). E.g.
//
//	signed(put, fedV1+"/send/:txnId", a.sendTransaction),
//	signed(get, fedV1+"/make_join/:roomId/:userId", a.makeJoin),
//	signed(put, fedV2+"/send_join/:roomId/:eventId", a.sendJoin),
func (a *API) routes() []route {
	return []route{
		// Discovery.
		open(get, "/.well-known/matrix/server", a.wellKnownServer),
		open(get, fedV1+"/version", a.version),

		// Keys: unauthenticated, they are how authentication starts.
		open(get, keyV2+"/server", a.serverKeys),
		open(get, keyV2+"/server/:keyId", a.serverKeys), // deprecated form
		open(get, keyV2+"/query/:serverName", a.queryKeysGet),
		open(post, keyV2+"/query", a.queryKeysPost),
	}
}
