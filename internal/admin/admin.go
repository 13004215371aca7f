// Package admin is the admin HTTP server of a millrace process: liveness
// (/healthz), readiness (/readyz) and Prometheus metrics (/metrics).
package admin

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// DefaultAddr is where the admin server listens unless told otherwise:
// loopback only (OpenTelemetry's and Prometheus exporters' port 9464).
const DefaultAddr = "127.0.0.1:9464"

// Off as an address disables the admin server.
const Off = "off"

// ErrNeedsToken is the error of an address other hosts can reach without a
// token: the metrics are not for everyone to read.
var ErrNeedsToken = errors.New("an admin address other hosts can reach needs a token (--admin-token, $MILLRACE_ADMIN_TOKEN, or admin.token in the pipelines file)")

// Config configures the admin server.
type Config struct {
	// Addr is host:port; port 0 picks a free one.
	Addr string
	// Token, if set, must come as "Authorization: Bearer TOKEN" for every
	// endpoint but /healthz and /readyz. An address that is not loopback
	// needs one.
	Token string
	// Gatherer is what /metrics serves.
	Gatherer prometheus.Gatherer
	// Ready reports readiness for /readyz: whether the process should get
	// work, and, when not, what is not ready. Nil: always ready.
	Ready func() (ready bool, notReady []string)
	// Alive reports liveness for /healthz (nil: alive while serving).
	Alive  func() bool
	Logger *slog.Logger
}

// Server is a running admin server.
type Server struct {
	srv *http.Server
	ln  net.Listener
}

// Start checks cfg, listens on cfg.Addr and serves in the background. A
// non-loopback address without a token is ErrNeedsToken.
func Start(cfg Config) (*Server, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	loop, err := Loopback(cfg.Addr)
	if err != nil {
		return nil, err
	}
	if !loop && cfg.Token == "" {
		return nil, fmt.Errorf("admin address %s: %w", cfg.Addr, ErrNeedsToken)
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("admin server: %w", err)
	}
	s := &Server{ln: ln, srv: &http.Server{
		Handler: Handler(cfg),
		// No slowloris: a client gets bounded time to send its request
		// and read the answer.
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    16 << 10,
	}}
	go func() {
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			cfg.Logger.Error("admin server stopped", "err", err)
		}
	}()
	return s, nil
}

// Addr is the address the server listens on (with the port it picked).
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Close stops the server, letting requests in progress finish until ctx
// ends.
func (s *Server) Close(ctx context.Context) error { return s.srv.Shutdown(ctx) }

// Loopback reports whether addr (host:port) can only be reached from this
// machine: a loopback IP or "localhost". An empty host is every interface.
func Loopback(addr string) (bool, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false, fmt.Errorf("admin address %q: want host:port (or %q): %w", addr, Off, err)
	}
	if host == "localhost" {
		return true, nil
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback(), nil
}

// Handler is the server's handler: /healthz, /readyz and /metrics.
func Handler(cfg Config) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		if cfg.Alive != nil && !cfg.Alive() {
			writeJSON(w, http.StatusServiceUnavailable, map[string]any{"alive": false})
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"alive": true})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		ready, notReady := true, []string(nil)
		if cfg.Ready != nil {
			ready, notReady = cfg.Ready()
		}
		code := http.StatusOK
		if !ready {
			code = http.StatusServiceUnavailable
		}
		writeJSON(w, code, map[string]any{"ready": ready, "not_ready": notReady})
	})
	metrics := promhttp.HandlerFor(cfg.Gatherer, promhttp.HandlerOpts{EnableOpenMetrics: true, ErrorLog: slogPrinter{cfg.Logger}})
	mux.Handle("GET /metrics", authorized(cfg.Token, metrics))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		problem(w, http.StatusNotFound, "no such endpoint", "the admin server serves GET /healthz, /readyz and /metrics")
	})
	return mux
}

// authorized lets a request through with the bearer token (RFC 6750), or
// answers 401.
func authorized(token string, next http.Handler) http.Handler {
	if token == "" {
		return next
	}
	want := []byte("Bearer " + token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got := []byte(r.Header.Get("Authorization"))
		if subtle.ConstantTimeCompare(got, want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="millrace"`)
			problem(w, http.StatusUnauthorized, "missing or wrong token", "send Authorization: Bearer <the admin token>")
			return
		}
		next.ServeHTTP(w, r)
	})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// problem answers with an RFC 9457 problem document.
func problem(w http.ResponseWriter, code int, title, detail string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]any{"type": "about:blank", "title": title, "status": code, "detail": detail})
}

// slogPrinter lets promhttp log its errors to slog.
type slogPrinter struct{ log *slog.Logger }

func (p slogPrinter) Println(v ...any) {
	p.log.Error("serving metrics", "err", strings.TrimSpace(fmt.Sprintln(v...)))
}
