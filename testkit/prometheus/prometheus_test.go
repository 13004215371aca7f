package prometheus_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/millrace/millrace/testkit/prometheus"
)

func TestStart_scrapes_itself_and_answers_queries(t *testing.T) {
	s := prometheus.StartWith(t, prometheus.Options{ScrapeSelf: true})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.WaitScraped(ctx, s.Addr()); err != nil {
		t.Fatal(err)
	}
	// A number only the scrape can have given: the server's own count of
	// HTTP requests, which includes the query API calls WaitScraped made.
	v, err := s.QueryValue(ctx, `sum(prometheus_http_requests_total{handler="/api/v1/query"})`)
	if err != nil {
		t.Fatal(err)
	}
	if v < 1 {
		t.Fatalf("prometheus counted %v query API requests; WaitScraped made at least one", v)
	}
	r, err := s.Query(ctx, `count by (job) (up)`)
	if err != nil {
		t.Fatal(err)
	}
	if r.Type != "vector" || len(r.Samples) != 1 || r.Samples[0].Metric["job"] != prometheus.SelfJob || r.Samples[0].Value != 1 {
		t.Fatalf("count by (job) (up) = %s %s, want one sample {job=%q} 1", r.Type, r.Raw, prometheus.SelfJob)
	}
	if v, err := s.QueryValue(ctx, `1 + 1`); err != nil || v != 2 {
		t.Fatalf("1 + 1 = %v, %v", v, err)
	}
	short, cancelShort := context.WithTimeout(ctx, time.Second)
	defer cancelShort()
	if err := s.AwaitValue(short, `vector(1)`, 2); err == nil || !strings.Contains(err.Error(), "last value 1") {
		t.Fatalf("AwaitValue(vector(1), 2) = %v, want an error with the last value", err)
	}
	t.Logf("prometheus on %s: %v query requests counted", s.Addr(), v)
}

func TestQuery_errors_name_the_problem_and_unknown_metrics_are_empty(t *testing.T) {
	s := prometheus.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, tt := range []struct {
		expr, want string
	}{
		{`sum(rate(up[5m])`, "bad_data"},
		{`rate(up)`, "expected type range vector"},
		{`histogram_quantile(0.99, up) by (le)`, "bad_data"},
	} {
		if _, err := s.Query(ctx, tt.expr); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Query(%q) = %v, want an error with %q", tt.expr, err, tt.want)
		}
	}
	// An unknown metric is no error, only no data: why tests that check
	// expressions also check that their metrics exist.
	r, err := s.Query(ctx, `no_such_metric_total`)
	if err != nil || len(r.Samples) != 0 {
		t.Fatalf("Query(no_such_metric_total) = %s %s, %v; want an empty vector", r.Type, r.Raw, err)
	}
	if _, err := s.QueryValue(ctx, `no_such_metric_total`); err == nil || !strings.Contains(err.Error(), "got 0") {
		t.Fatalf("QueryValue of nothing = %v, want an error saying it got 0 samples", err)
	}
}

func TestWaitScraped_gives_the_scrape_error_of_a_target_that_is_down(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := l.Addr().String()
	l.Close()
	s := prometheus.Start(t, down)
	// Prometheus applies new targets at most every 5s: its first scrape
	// comes that late.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = s.WaitScraped(ctx, down)
	if err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("WaitScraped(%s) = %v, want an error with the scrape's connection refused", down, err)
	}
	t.Log(err)
}

func TestStartWith_sends_the_bearer_token_and_loads_rule_files(t *testing.T) {
	const token = "s3cret"
	var scrapes, unauthorized atomic.Int64
	mux := http.NewServeMux()
	mux.HandleFunc("/metrics", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+token {
			unauthorized.Add(1)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		n := scrapes.Add(1)
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		fmt.Fprintf(w, "# HELP demo_scrapes_total Scrapes served.\n# TYPE demo_scrapes_total counter\ndemo_scrapes_total %d\n", n)
	})
	target := serve(t, mux)

	s := prometheus.StartWith(t, prometheus.Options{
		Targets:     []string{target},
		BearerToken: token,
		RuleFiles:   []string{filepath.Join("testdata", "good.rules.yml")},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.WaitScraped(ctx, target); err != nil {
		t.Fatal(err)
	}
	if err := s.AwaitValue(ctx, fmt.Sprintf(`demo_scrapes_total{instance=%q,job=%q} >= bool 1`, target, prometheus.Job), 1); err != nil {
		t.Fatal(err)
	}
	if n := unauthorized.Load(); n != 0 {
		t.Fatalf("%d scrapes came without the bearer token", n)
	}
	rules, err := s.AwaitRulesEvaluated(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(rules) != 2 {
		t.Fatalf("loaded %d rules, want the 2 of good.rules.yml: %+v", len(rules), rules)
	}
	for _, r := range rules {
		if r.Health != "ok" {
			t.Errorf("rule %s: health %s: %s", r.Name, r.Health, r.LastError)
		}
	}
}

// serve runs handler on a free loopback port until the test ends and
// returns its host:port.
func serve(t *testing.T, handler http.Handler) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return l.Addr().String()
}

func TestStart_stops_the_server_and_removes_its_directory_when_the_test_ends(t *testing.T) {
	var dir string
	var pid int
	t.Run("server", func(t *testing.T) {
		s := prometheus.Start(t)
		dir = s.Dir()
		pid = pidOf(t, s.Addr())
		if _, err := os.Stat(filepath.Join(dir, "data")); err != nil {
			t.Fatalf("no data directory while running: %v", err)
		}
	})
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s still there after the test (stat: %v)", dir, err)
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("prometheus %d still running after the test (kill 0: %v)", pid, err)
	}
}

// pidOf finds the process listening on addr's port among this process's
// children, from /proc (Linux only).
func pidOf(t *testing.T, addr string) int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	self := fmt.Sprint(os.Getpid())
	for _, e := range entries {
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid …
		f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
		if len(f) > 1 && f[1] == self && strings.Contains(string(stat), "(prometheus)") {
			var pid int
			fmt.Sscan(e.Name(), &pid)
			return pid
		}
	}
	t.Fatalf("no prometheus child process serving %s", addr)
	return 0
}

func TestCheckMetrics_accepts_good_expositions_and_names_the_problem_of_bad_ones(t *testing.T) {
	for _, tt := range []struct {
		file, want string
	}{
		{"good.prom", ""},
		{"counter-without-total.bad.prom", `should have "_total" suffix`},
		{"no-help.bad.prom", "no help text"},
		{"syntax.bad.prom", "parsing error"},
	} {
		t.Run(tt.file, func(t *testing.T) {
			body, err := os.ReadFile(filepath.Join("testdata", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			err = prometheus.CheckMetrics(t, body)
			check(t, err, tt.want)
		})
	}
}

func TestCheckRules_accepts_good_rules_and_names_the_problem_of_bad_ones(t *testing.T) {
	for _, tt := range []struct {
		file, want string
	}{
		{"good.rules.yml", ""},
		{"promql.bad.rules.yml", "unclosed left parenthesis"},
		{"template.bad.rules.yml", `annotation "summary"`},
		{"duplicate.bad.rules.yml", "duplicate rule"},
	} {
		t.Run(tt.file, func(t *testing.T) {
			check(t, prometheus.CheckRules(t, filepath.Join("testdata", tt.file)), tt.want)
		})
	}
}

// check wants err to be nil when want is empty, else to contain want.
func check(t *testing.T, err error, want string) {
	t.Helper()
	switch {
	case want == "" && err != nil:
		t.Fatalf("want no error, got %v", err)
	case want != "" && err == nil:
		t.Fatalf("want an error with %q, got none", want)
	case want != "" && !strings.Contains(err.Error(), want):
		t.Fatalf("want an error with %q, got %v", want, err)
	}
}

func TestStart_skips_loudly_without_prometheus_outside_CI(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	t.Setenv("CI", "")
	var skipped bool
	t.Run("no prometheus", func(t *testing.T) {
		defer func() { skipped = t.Skipped() }()
		prometheus.Start(t)
		t.Error("Start returned without a prometheus binary")
	})
	if !skipped {
		t.Fatal("a test without prometheus on PATH was not skipped")
	}
}
