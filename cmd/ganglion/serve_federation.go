package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"net"
	"net/http"
	"time"

	"github.com/hashicorp/go-hclog"
	"maunium.net/go/mautrix/id"

	"github.com/ganglion/ganglion/clientapi"
	"github.com/ganglion/ganglion/cluster"
	"github.com/ganglion/ganglion/config"
	"github.com/ganglion/ganglion/federation"
	"github.com/ganglion/ganglion/rooms"
)

// federationConfig maps the YAML settings onto the federation package's.
func federationConfig(cfg *config.Config) federation.Config {
	f := cfg.Federation
	out := federation.Config{
		ServerName: cfg.ServerName, KeyValidity: f.KeyValidity.Duration, ExtraCAFiles: f.ExtraCAFiles,
		InsecureSkipVerifyLoopback: f.InsecureSkipVerifyLoopback, AllowPrivateAddresses: f.AllowPrivateAddresses,
		MaxRequestBytes: f.MaxRequestBytes, RequestTimeout: f.RequestTimeout.Duration,
		WellKnownServer: f.WellKnownServer,
	}
	for _, ks := range f.TrustedKeyServers {
		t := federation.TrustedKeyServer{ServerName: ks.ServerName}
		if len(ks.VerifyKeys) > 0 {
			t.VerifyKeys = map[id.KeyID]id.SigningKey{}
			for k, v := range ks.VerifyKeys {
				t.VerifyKeys[id.KeyID(k)] = id.SigningKey(v)
			}
		}
		out.TrustedKeyServers = append(out.TrustedKeyServers, t)
	}
	return out
}

// startFederation serves the Server-Server API on its TLS listener. Writes
// reaching a follower are forwarded to the leader like client writes, so
// the leader's internal server (inner) routes federation paths too.
func startFederation(cfg *config.Config, node *cluster.Node, rs *rooms.Service, api *clientapi.API, inner *http.ServeMux, log hclog.Logger) (*federation.API, *http.Server, error) {
	fed, err := federation.New(federationConfig(cfg), node, rs, log)
	if err != nil {
		return nil, nil, err
	}
	fed.SetEphemeralSink(api)
	api.SetBackfiller(fed)
	api.SetRemoteMembership(fed)
	rs.SetRemoteInviter(fed)
	h := fed.Handler()
	inner.Handle("/_matrix/federation/", h)
	inner.Handle("/_matrix/key/", h)
	// Delegation is looked up at https://<server_name>/, usually a proxy in
	// front of the client port: serve it on both listeners.
	inner.Handle("/.well-known/matrix/server", h)
	certFile, keyFile := cfg.Federation.TLSCert, cfg.Federation.TLSKey
	if cfg.Federation.DevCertificate {
		if certFile, keyFile, err = federation.EnsureDevCertificate(cfg.DataDir, "localhost", "127.0.0.1", "::1"); err != nil {
			return nil, nil, err
		}
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, nil, err
	}
	ln, err := net.Listen("tcp", cfg.Federation.Listen)
	if err != nil {
		return nil, nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("/", node.Middleware(inner))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second,
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
		ErrorLog:  log.Named("http").StandardLogger(&hclog.StandardLoggerOptions{InferLevels: true})}
	go func() {
		if err := srv.ServeTLS(ln, "", ""); err != nil && err != http.ErrServerClosed {
			log.Error("federation listener stopped", "error", err)
		}
	}()
	log.Info("serving federation", "listen", ln.Addr().String())
	return fed, srv, nil
}

// startSender runs the outbound federation sender (it works only while
// this node leads) and routes local typing to it.
func startSender(ctx context.Context, cfg *config.Config, node *cluster.Node, fed *federation.API, api *clientapi.API, log hclog.Logger) *federation.Sender {
	s := federation.NewSender(node, cfg.ServerName, fed.TransactionClient(), log)
	s.Start(ctx)
	api.SetTypingNotifier(federation.NewTypingOut(s, node.Store()))
	return s
}

// wellKnownClient serves /.well-known/matrix/client from the config.
func wellKnownClient(baseURL string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Access-Control-Allow-Origin", "*")
		if baseURL == "" {
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(`{"errcode":"M_NOT_FOUND","error":"no client discovery information"}`))
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"m.homeserver": map[string]string{"base_url": baseURL}})
	})
}
