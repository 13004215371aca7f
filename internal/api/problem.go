package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// Problem is an RFC 9457 problem details document
// (application/problem+json): what went wrong with a request, for a
// client to act on. Type names the kind of problem (a URN of millrace's,
// listed in docs/api.yaml); Status repeats the HTTP status code.
type Problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail,omitempty"`
	// Instance is the request's path.
	Instance string `json:"instance,omitempty"`
	// RetryAfter, in whole seconds, is sent as the Retry-After header
	// (RFC 9110 §10.2.3) when more than 0; it is not in the body.
	RetryAfter time.Duration `json:"-"`
}

// The problem types of the API (docs/api.yaml lists them).
const (
	typeUnknownPipeline = "urn:millrace:problem:unknown-pipeline"
	typeUnknownJob      = "urn:millrace:problem:unknown-job"
	typeNoResults       = "urn:millrace:problem:no-results"
	typeTooLarge        = "urn:millrace:problem:body-too-large"
	typeBadRequest      = "urn:millrace:problem:bad-request"
	typeUnavailable     = "urn:millrace:problem:broker-unavailable"
	typeNotReady        = "urn:millrace:problem:not-ready"
	typeUnauthorized    = "urn:millrace:problem:unauthorized"
	typeForbidden       = "urn:millrace:problem:forbidden"
	typeInternal        = "urn:millrace:problem:internal"
	typeNotFound        = "urn:millrace:problem:not-found"
	typeMethod          = "urn:millrace:problem:method-not-allowed"
)

func problem(status int, typ, format string, args ...any) *Problem {
	return &Problem{Type: typ, Title: http.StatusText(status), Status: status, Detail: fmt.Sprintf(format, args...)}
}

// Error is the problem's detail, for logs.
func (p *Problem) Error() string { return fmt.Sprintf("%d %s: %s", p.Status, p.Title, p.Detail) }

// write sends p as the response to r.
func (p *Problem) write(w http.ResponseWriter, r *http.Request) {
	p.Instance = r.URL.Path
	h := w.Header()
	h.Set("Content-Type", "application/problem+json")
	h.Set("Cache-Control", "no-store")
	if p.RetryAfter > 0 {
		h.Set("Retry-After", retryAfter(p.RetryAfter))
	}
	if p.Status == http.StatusUnauthorized {
		h.Set("WWW-Authenticate", `Bearer realm="millrace"`) // RFC 6750 §3
	}
	w.WriteHeader(p.Status)
	encode(w, p)
}

// retryAfter is d as Retry-After's delay-seconds: whole seconds, at least 1.
func retryAfter(d time.Duration) string {
	return strconv.Itoa(max(1, int((d+time.Second-1)/time.Second)))
}

// writeJSON sends v as a JSON response with status code.
func writeJSON(w http.ResponseWriter, code int, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	encode(w, v)
}

// encode writes v as JSON, with <, > and & as they are (no HTML here).
func encode(w http.ResponseWriter, v any) {
	e := json.NewEncoder(w)
	e.SetEscapeHTML(false)
	_ = e.Encode(v)
}
