package jobs_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/millrace/millrace/jobs"
)

// The example of GitHub's "Validating webhook deliveries" page.
const (
	githubSecret    = "It's a Secret to Everybody"
	githubBody      = "Hello, World!"
	githubSignature = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
)

func TestSign_matches_githubs_example(t *testing.T) {
	if got := jobs.Sign([]byte(githubSecret), []byte(githubBody)); got != githubSignature {
		t.Fatalf("Sign = %s, want %s", got, githubSignature)
	}
}

func TestVerifySignature(t *testing.T) {
	secret, body := []byte(githubSecret), []byte(githubBody)
	for _, tc := range []struct {
		name         string
		secret, body []byte
		header       string
		want         bool
	}{
		{"its own signature", secret, body, githubSignature, true},
		{"uppercase hex digits", secret, body, "sha256=" + strings.ToUpper(strings.TrimPrefix(githubSignature, "sha256=")), true},
		{"another body", secret, []byte("Hello, World?"), githubSignature, false},
		{"another secret", []byte("guess"), body, githubSignature, false},
		{"no prefix", secret, body, strings.TrimPrefix(githubSignature, "sha256="), false},
		{"sha1 prefix", secret, body, "sha1=" + strings.TrimPrefix(githubSignature, "sha256="), false},
		{"truncated digest", secret, body, githubSignature[:len(githubSignature)-2], false},
		{"not hex", secret, body, githubSignature[:len(githubSignature)-1] + "g", false},
		{"empty", secret, body, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := jobs.VerifySignature(tc.secret, tc.body, tc.header); got != tc.want {
				t.Fatalf("VerifySignature = %v, want %v", got, tc.want)
			}
		})
	}
}

// receiver is a callback endpoint on 127.0.0.1 that answers each request
// with the handler's reply and keeps what it was sent.
type receiver struct {
	*httptest.Server
	mu       sync.Mutex
	requests []received
}

type received struct {
	header http.Header
	body   []byte
	url    string
}

func newReceiver(t *testing.T, reply http.HandlerFunc) *receiver {
	t.Helper()
	r := &receiver{}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, err := io.ReadAll(req.Body)
		if err != nil {
			t.Errorf("read request body: %v", err)
		}
		r.mu.Lock()
		r.requests = append(r.requests, received{req.Header.Clone(), body, req.URL.String()})
		r.mu.Unlock()
		reply(w, req)
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *receiver) got() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.requests)
}

func status(code int) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(code) }
}

var secret = []byte("s3cr3t-hmac-key")

func allowLocal(host string) bool { return host == "127.0.0.1" }

func newPoster(t *testing.T, cfg jobs.PosterConfig) *jobs.Poster {
	t.Helper()
	if cfg.Secret == nil {
		cfg.Secret = secret
	}
	if cfg.AllowHost == nil {
		cfg.AllowHost = allowLocal
	}
	p, err := jobs.NewPoster(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func callbackTo(url string) jobs.Pending {
	return jobs.Pending{DeliveryID: "d-1", Job: "job-1", Body: []byte(`{"status":"succeeded"}`), URL: url}
}

func TestPoster_sends_the_body_with_the_headers_of_the_contract(t *testing.T) {
	r := newReceiver(t, status(http.StatusNoContent))
	c := callbackTo(r.URL + "/hook?token=abc")
	if err := newPoster(t, jobs.PosterConfig{}).Post(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	got := r.got()
	if len(got) != 1 {
		t.Fatalf("%d requests, want 1", len(got))
	}
	req := got[0]
	if string(req.body) != string(c.Body) || req.url != "/hook?token=abc" {
		t.Fatalf("got %s %s, want %s %s", req.url, req.body, "/hook?token=abc", c.Body)
	}
	for name, want := range map[string]string{
		"Content-Type":       "application/json",
		"User-Agent":         "millrace",
		jobs.HeaderDelivery:  "d-1",
		jobs.HeaderJob:       "job-1",
		jobs.HeaderSignature: jobs.Sign(secret, c.Body),
	} {
		if v := req.header.Get(name); v != want {
			t.Errorf("%s: %q, want %q", name, v, want)
		}
	}
	if !jobs.VerifySignature(secret, req.body, req.header.Get(jobs.HeaderSignature)) {
		t.Error("the signature does not verify")
	}
}

func TestPoster_classifies_responses(t *testing.T) {
	for _, tc := range []struct {
		status     int
		retryAfter string
		retryable  bool
		after      time.Duration
	}{
		{status: 200},
		{status: 202},
		{status: 408, retryable: true},
		{status: 429, retryable: true, retryAfter: "30", after: 30 * time.Second},
		{status: 500, retryable: true},
		{status: 502, retryable: true, retryAfter: "Fri, 31 Dec 1999 23:59:59 GMT"}, // the date form is ignored
		{status: 503, retryable: true, retryAfter: "-5"},
		{status: 503, retryable: true, retryAfter: "99999999999999999", after: time.Duration(math.MaxInt64 / int64(time.Second) * int64(time.Second))},
		{status: 599, retryable: true},
		{status: 302}, // redirects are not followed
		{status: 400},
		{status: 401},
		{status: 404},
		{status: 410},
		{status: 422},
	} {
		t.Run(fmt.Sprint(tc.status, tc.retryAfter), func(t *testing.T) {
			r := newReceiver(t, func(w http.ResponseWriter, _ *http.Request) {
				if tc.retryAfter != "" {
					w.Header().Set("Retry-After", tc.retryAfter)
				}
				if tc.status == http.StatusFound {
					w.Header().Set("Location", "http://127.0.0.1:1/elsewhere")
				}
				w.WriteHeader(tc.status)
			})
			err := newPoster(t, jobs.PosterConfig{}).Post(context.Background(), callbackTo(r.URL))
			if tc.status < 300 {
				if err != nil {
					t.Fatalf("err = %v, want nil", err)
				}
				return
			}
			var ce *jobs.CallbackError
			if !errors.As(err, &ce) {
				t.Fatalf("err = %v, want a *CallbackError", err)
			}
			if ce.Status != tc.status || ce.Retryable != tc.retryable || ce.RetryAfter != tc.after {
				t.Fatalf("got status %d retryable %v after %s, want %d %v %s (%v)",
					ce.Status, ce.Retryable, ce.RetryAfter, tc.status, tc.retryable, tc.after, err)
			}
			if n := len(r.got()); n != 1 {
				t.Fatalf("%d requests, want 1", n)
			}
		})
	}
}

func TestPoster_network_errors_and_timeouts_are_retryable(t *testing.T) {
	closed := httptest.NewServer(status(200))
	closed.Close()
	hung := newReceiver(t, func(_ http.ResponseWriter, req *http.Request) { <-req.Context().Done() })
	for name, url := range map[string]string{"connection refused": closed.URL, "timeout": hung.URL} {
		t.Run(name, func(t *testing.T) {
			err := newPoster(t, jobs.PosterConfig{Timeout: 100 * time.Millisecond}).Post(context.Background(), callbackTo(url))
			var ce *jobs.CallbackError
			if !errors.As(err, &ce) || !ce.Retryable || ce.Status != 0 || ce.Err == nil {
				t.Fatalf("err = %#v, want a retryable *CallbackError with a cause", err)
			}
			if name == "timeout" && !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("err = %v, want a deadline exceeded", err)
			}
		})
	}
}

func TestPoster_refuses_a_url_without_a_request(t *testing.T) {
	r := newReceiver(t, status(200))
	port := strings.TrimPrefix(r.URL, "http://127.0.0.1:")
	for name, url := range map[string]string{
		"host not allowed": "http://localhost:" + port + "/hook",
		"ipv6 loopback":    "http://[::1]:" + port + "/hook",
		"scheme ftp":       "ftp://127.0.0.1:" + port + "/hook",
		"scheme file":      "file:///etc/passwd",
		"no host":          "http:///hook",
		"relative":         "/hook",
		"unparsable":       "http://127.0.0.1:" + port + "/hook\x7f?token=abc",
		"password with /":  "http://user:token/abc@127.0.0.1:" + port + "/hook",
	} {
		t.Run(name, func(t *testing.T) {
			var asked []string
			p := newPoster(t, jobs.PosterConfig{AllowHost: func(h string) bool {
				asked = append(asked, h)
				return h == "127.0.0.1"
			}})
			err := p.Post(context.Background(), callbackTo(url))
			var ce *jobs.CallbackError
			if !errors.As(err, &ce) || ce.Retryable || !errors.Is(err, jobs.ErrCallbackRefused) {
				t.Fatalf("err = %v, want a permanent *CallbackError wrapping ErrCallbackRefused", err)
			}
			if strings.Contains(err.Error(), "token") {
				t.Fatalf("the error shows the query string: %v", err)
			}
			if name == "ipv6 loopback" && !slices.Equal(asked, []string{"::1"}) {
				t.Fatalf("AllowHost asked about %q, want [::1]", asked)
			}
		})
	}
	if n := len(r.got()); n != 0 {
		t.Fatalf("%d requests, want none", n)
	}
}

func TestPoster_errors_hide_the_query_userinfo_and_secret(t *testing.T) {
	const token, password = "tok-9f8e7d", "pw-1a2b3c"
	failing := newReceiver(t, status(http.StatusServiceUnavailable))
	closed := httptest.NewServer(status(200))
	closed.Close()
	hung := newReceiver(t, func(_ http.ResponseWriter, req *http.Request) { <-req.Context().Done() })
	for name, base := range map[string]string{"status": failing.URL, "network": closed.URL, "timeout": hung.URL} {
		t.Run(name, func(t *testing.T) {
			url := strings.Replace(base, "http://", "http://user:"+password+"@", 1) + "/hooks/in?token=" + token + "#frag"
			err := newPoster(t, jobs.PosterConfig{Timeout: 100 * time.Millisecond}).Post(context.Background(), callbackTo(url))
			if err == nil {
				t.Fatal("no error")
			}
			msg := fmt.Sprintf("%v %+v %#v", err, err, err)
			for _, secretish := range []string{token, password, "user:", "frag", string(secret)} {
				if strings.Contains(msg, secretish) {
					t.Errorf("the error holds %q: %s", secretish, msg)
				}
			}
			if want := base + "/hooks/in"; !strings.Contains(err.Error(), want) {
				t.Errorf("the error %q does not show %s", err, want)
			}
		})
	}
}

func TestNewPoster_needs_a_secret_and_a_host_matcher(t *testing.T) {
	for name, cfg := range map[string]jobs.PosterConfig{
		"no secret":       {AllowHost: allowLocal},
		"no host matcher": {Secret: secret},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := jobs.NewPoster(cfg); err == nil || !strings.Contains(err.Error(), name) {
				t.Fatalf("err = %v, want one saying %q", err, name)
			}
		})
	}
}
