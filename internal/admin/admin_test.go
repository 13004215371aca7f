package admin_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/millrace/millrace/internal/admin"
)

func TestLoopback(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:9464": true, "127.0.0.2:1": true, "[::1]:9464": true, "localhost:9464": true,
		":9464": false, "0.0.0.0:9464": false, "[::]:9464": false, "10.0.0.5:9464": false, "example.com:9464": false,
	} {
		if got, err := admin.Loopback(addr); err != nil || got != want {
			t.Errorf("Loopback(%q) = %v, %v; want %v", addr, got, err, want)
		}
	}
	if _, err := admin.Loopback("9464"); err == nil {
		t.Error("Loopback(\"9464\") gave no error; want one: no host:port")
	}
}

// A real client against a real server: the endpoints, their status codes
// and bodies, the token on /metrics only.
func TestServer_endpoints(t *testing.T) {
	if _, err := admin.Start(admin.Config{Addr: "0.0.0.0:0", Gatherer: prometheus.NewRegistry()}); !errors.Is(err, admin.ErrNeedsToken) {
		t.Fatalf("a reachable address without a token started: %v", err)
	}
	var ready atomic.Bool
	reg := admin.NewRegistry()
	srv, err := admin.Start(admin.Config{Addr: "127.0.0.1:0", Token: "t0k", Gatherer: reg,
		Ready: func() (bool, []string) {
			if !ready.Load() {
				return false, []string{"stage p/s has not joined its consumer group"}
			}
			return true, nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close(context.Background())
	c := &http.Client{Timeout: 5 * time.Second}
	call := func(path, token string) (int, string, string) {
		req, _ := http.NewRequest(http.MethodGet, "http://"+srv.Addr()+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get("Content-Type"), string(b)
	}
	if code, _, body := call("/healthz", ""); code != 200 || !strings.Contains(body, `"alive":true`) {
		t.Errorf("/healthz: %d %s", code, body)
	}
	code, _, body := call("/readyz", "")
	var r struct {
		Ready    bool     `json:"ready"`
		NotReady []string `json:"not_ready"`
	}
	if err := json.Unmarshal([]byte(body), &r); code != 503 || err != nil || r.Ready || len(r.NotReady) != 1 {
		t.Errorf("/readyz not ready: %d %s", code, body)
	}
	ready.Store(true)
	if code, _, body := call("/readyz", ""); code != 200 || !strings.Contains(body, `"ready":true`) {
		t.Errorf("/readyz ready: %d %s", code, body)
	}
	if code, ct, body := call("/metrics", ""); code != 401 || ct != "application/problem+json" || !strings.Contains(body, `"status":401`) {
		t.Errorf("/metrics without the token: %d %s %s", code, ct, body)
	}
	if code, _, _ := call("/metrics", "wrong"); code != 401 {
		t.Errorf("/metrics with a wrong token: %d", code)
	}
	if code, _, body := call("/metrics", "t0k"); code != 200 || !strings.Contains(body, "millrace_build_info{") || !strings.Contains(body, "go_goroutines") {
		t.Errorf("/metrics with the token: %d, %d bytes", code, len(body))
	}
	if code, ct, _ := call("/nope", ""); code != 404 || ct != "application/problem+json" {
		t.Errorf("unknown path: %d %s", code, ct)
	}
}
