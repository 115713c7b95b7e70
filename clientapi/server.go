// Package clientapi serves the Matrix Client-Server API (/_matrix/client).
// Reads come from the local FSM store; writes go through cluster/rooms.
package clientapi

import (
	"net/http"
	"strings"

	"github.com/hashicorp/go-hclog"
	"github.com/julienschmidt/httprouter"

	"github.com/ganglion/ganglion/cluster"
	"github.com/ganglion/ganglion/config"
	"github.com/ganglion/ganglion/fsm"
	"github.com/ganglion/ganglion/internal/matrixhttp"
	"github.com/ganglion/ganglion/rooms"
)

// API holds what every handler needs.
type API struct {
	cfg   *config.Config
	node  *cluster.Node
	store *fsm.Store
	rooms *rooms.Service
	log   hclog.Logger
	eph   *ephemeral
	uia   *uiaSessions

	lazy         *lazyMembers   // lazy-loaded members sent to each device
	toDeviceAcks *toDeviceAcker // deletions of delivered to-device messages
	thumbs       *thumbCache    // recently computed thumbnails
	thumbSlots   chan struct{}  // bounds concurrent thumbnail decodes, and with them memory
	unread       *unreadCache   // per user and room, so syncs count only new events
	typingOut    TypingNotifier // other servers in the room; nil without federation
	backfill     *backfillHook  // history from other servers; nil without federation
	remote       RemoteMembership
}

// New builds the Client-Server API.
func New(cfg *config.Config, node *cluster.Node, rs *rooms.Service, log hclog.Logger) *API {
	a := &API{
		cfg: cfg, node: node, store: node.Store(), rooms: rs, log: log,
		eph: newEphemeral(), uia: newUIASessions(),
		lazy: newLazyMembers(), toDeviceAcks: newToDeviceAcker(), unread: newUnreadCache(),
		thumbs:     &thumbCache{max: thumbCacheBytes, m: map[string]thumb{}},
		thumbSlots: make(chan struct{}, thumbnailWorkers),
	}
	node.OnEphemeral(a.receiveEphemeral)
	return a
}

// Handler is the HTTP handler with CORS and the route table.
func (a *API) Handler() http.Handler {
	router := matrixhttp.NewRouter(a.log)
	for _, rt := range a.routes() {
		h := matrixhttp.UnescapeParams(rt.h)
		if rt.auth {
			h = a.authed(h)
		}
		for _, pfx := range rt.prefixes() {
			router.Handle(rt.method, pfx+rt.path, httprouter.Handle(h))
		}
	}
	return cors(matrixhttp.RouteEscaped(emptyStateKey(router)))
}

// emptyStateKey maps `/rooms/{id}/state/{type}/` (the empty state key, as
// clients write it) onto the `/state/{type}` route, which the router cannot
// match with an empty parameter.
func emptyStateKey(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Path
		if strings.HasSuffix(p, "/") && strings.HasPrefix(p, "/_matrix/client/") {
			parts := strings.Split(strings.TrimSuffix(p, "/"), "/")
			// "", _matrix, client, v3, rooms, {id}, state, {type}
			if len(parts) == 8 && parts[4] == "rooms" && parts[6] == "state" {
				r2 := r.Clone(r.Context())
				r2.URL.Path = strings.TrimSuffix(p, "/")
				next.ServeHTTP(w, r2)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// cors lets browser clients call the API (the spec requires these headers).
func cors(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Access-Control-Allow-Origin", "*")
		h.Set("Access-Control-Allow-Methods", "GET, POST, PUT, DELETE, OPTIONS")
		h.Set("Access-Control-Allow-Headers", "X-Requested-With, Content-Type, Authorization")
		if r.Method == http.MethodOptions {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		next.ServeHTTP(w, r)
	})
}
