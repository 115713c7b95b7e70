package federation

import (
	"net/http"
	"sync"

	"github.com/hashicorp/go-hclog"
	"github.com/julienschmidt/httprouter"

	"github.com/ganglion/ganglion/cluster"
	"github.com/ganglion/ganglion/fsm"
	"github.com/ganglion/ganglion/internal/matrixhttp"
	"github.com/ganglion/ganglion/rooms"
)

// API is the Server-Server API of one node: the key server and notary,
// request authentication, the keyring and the outbound client, and (added
// by the PDU endpoints) the federation handlers.
type API struct {
	cfg     Config
	node    *cluster.Node  // nil in key-only tests
	store   *fsm.Store     // nil in key-only tests
	rooms   *rooms.Service // nil in key-only tests
	log     hclog.Logger
	keys    KeySource
	keyring *Keyring
	client  *Client
	inbound *inboundState // ingestion locks, inbound transactions, the ephemeral sink
	gates   sync.Map      // room ID -> chan struct{}: one backfill per room at a time
}

type handler func(w http.ResponseWriter, r *http.Request, p httprouter.Params)

// New builds the federation API of a cluster node; its signing key is the
// one the FSM replicates (rooms.Service.Start creates it).
func New(cfg Config, node *cluster.Node, rs *rooms.Service, log hclog.Logger) (*API, error) {
	return newAPI(cfg, NewStoreKeys(node.Store()), node, rs, log)
}

// NewWithKeys builds the API around a given key source and no cluster: the
// key server, notary, version and authentication work; handlers that need
// rooms do not. For fake remote servers in tests.
func NewWithKeys(cfg Config, keys KeySource, log hclog.Logger) (*API, error) {
	return newAPI(cfg, keys, nil, nil, log)
}

func newAPI(cfg Config, keys KeySource, node *cluster.Node, rs *rooms.Service, log hclog.Logger) (*API, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = hclog.NewNullLogger()
	}
	client, err := NewClient(cfg, keys, log.Named("client"))
	if err != nil {
		return nil, err
	}
	keyring, err := NewKeyring(cfg, keys, client, log.Named("keyring"))
	if err != nil {
		return nil, err
	}
	a := &API{cfg: cfg, node: node, rooms: rs, log: log, keys: keys, keyring: keyring, client: client,
		inbound: &inboundState{rooms: map[string]*roomLock{}, txns: map[string]*txnCall{}}}
	if node != nil {
		a.store = node.Store()
	}
	return a, nil
}

// ServerName is this homeserver's name.
func (a *API) ServerName() string { return a.cfg.ServerName }

// Keyring fetches and verifies other servers' keys and signatures.
func (a *API) Keyring() *Keyring { return a.keyring }

// Client makes signed outbound requests.
func (a *API) Client() *Client { return a.client }

// Handler serves /_matrix/key/..., /_matrix/federation/... and
// /.well-known/matrix/server. Unknown paths are 404 M_UNRECOGNIZED, known
// paths with another method 405 M_UNRECOGNIZED.
func (a *API) Handler() http.Handler { return a.handler(a.routes()) }

func (a *API) handler(routes []route) http.Handler {
	router := matrixhttp.NewRouter(a.log)
	for _, rt := range routes {
		h := matrixhttp.UnescapeParams(rt.h)
		if rt.auth {
			h = a.authenticated(h)
		}
		router.Handle(rt.method, rt.path, httprouter.Handle(h))
	}
	return matrixhttp.RouteEscaped(router)
}
