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

		// Inbound transactions and the events other servers fetch.
		signed(put, fedV1+"/send/:txnId", a.sendTransaction),
		signed(get, fedV1+"/event/:eventId", a.getEvent),
		signed(get, fedV1+"/state/:roomId", a.getState),
		signed(get, fedV1+"/state_ids/:roomId", a.getStateIDs),
		signed(get, fedV1+"/event_auth/:roomId/:eventId", a.getEventAuth),
		signed(get, fedV1+"/backfill/:roomId", a.backfill),
		signed(post, fedV1+"/get_missing_events/:roomId", a.getMissingEvents),

		// Queries about local users, aliases and the room directory.
		signed(get, fedV1+"/query/directory", a.queryDirectory),
		signed(get, fedV1+"/query/profile", a.queryProfile),
		signed(get, fedV1+"/user/devices/:userId", a.userDevices),
		signed(get, fedV1+"/publicRooms", a.publicRooms),
		signed(post, fedV1+"/publicRooms", a.publicRooms),

		// Membership handshakes (join*.go, leave.go, knock.go, invite.go).
		signed(get, fedV1+"/make_join/:roomId/:userId", a.makeJoin),
		signed(put, fedV2+"/send_join/:roomId/:eventId", a.sendJoin),
		signed(get, fedV1+"/make_leave/:roomId/:userId", a.makeLeave),
		signed(put, fedV2+"/send_leave/:roomId/:eventId", a.sendLeave),
		signed(get, fedV1+"/make_knock/:roomId/:userId", a.makeKnock),
		signed(put, fedV1+"/send_knock/:roomId/:eventId", a.sendKnock),
		signed(put, fedV2+"/invite/:roomId/:eventId", a.invite),
	}
}
