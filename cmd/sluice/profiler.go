package main

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
)

// serveProfiler serves Go's profiler on its own listener, apart from the API, so that it is
// never reachable where the API is; stop closes it.
func serveProfiler(addr string, authenticated bool, logger *slog.Logger) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("debug listener: %w", err)
	}
	// The profiler asks no one who they are: with authentication on, it stays on loopback.
	if tcp, ok := ln.Addr().(*net.TCPAddr); ok && authenticated && !tcp.IP.IsLoopback() {
		ln.Close()
		return nil, fmt.Errorf("refusing --debug-listen %s, which is not a loopback address, with --auth sigv4: the profiler asks no one who is calling", addr)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux}
	logger.Info("profiler listening", "addr", ln.Addr().String())
	go func() {
		if err := srv.Serve(ln); err != nil && err != http.ErrServerClosed {
			logger.Warn("profiler stopped", "err", err)
		}
	}()
	return func() { srv.Close() }, nil
}
