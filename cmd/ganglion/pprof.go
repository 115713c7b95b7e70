package main

import (
	"net/http"
	"net/http/pprof"
	"os"

	"github.com/hashicorp/go-hclog"
)

// startPprof serves Go's profiler on GANGLION_PPROF (host:port) when set:
// an operator's tool for finding where a node spends its time. It is off
// by default and should listen on loopback only.
func startPprof(log hclog.Logger) {
	addr := os.Getenv("GANGLION_PPROF")
	if addr == "" {
		return
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	go func() {
		log.Info("profiler listening", "addr", addr)
		if err := http.ListenAndServe(addr, mux); err != nil {
			log.Warn("profiler stopped", "error", err)
		}
	}()
}
