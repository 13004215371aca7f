package api

import (
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// The routes of the API, as net/http patterns (Go 1.22 ServeMux).
const (
	routeSubmit      = "POST /v1/pipelines/{pipeline}/jobs"
	routeBatch       = "POST /v1/pipelines/{pipeline}/jobs:batch"
	routeStatus      = "GET /v1/jobs/{id}"
	routeStatusOf    = "GET /v1/pipelines/{pipeline}/jobs/{id}"
	routePipelines   = "GET /v1/pipelines"
	routeUnknownPath = "/"
)

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc(routeSubmit, s.submit)
	mux.HandleFunc(routeBatch, s.submitBatch)
	mux.HandleFunc(routeStatus, s.status)
	mux.HandleFunc(routeStatusOf, s.status)
	mux.HandleFunc(routePipelines, s.listPipelines)
	// The same paths with another method: 405 with a problem document
	// (the mux's own 405 is plain text).
	for path, allow := range map[string]string{
		"/v1/pipelines/{pipeline}/jobs":       "POST",
		"/v1/pipelines/{pipeline}/jobs:batch": "POST",
		"/v1/jobs/{id}":                       "GET, HEAD",
		"/v1/pipelines/{pipeline}/jobs/{id}":  "GET, HEAD",
		"/v1/pipelines":                       "GET, HEAD",
	} {
		mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Allow", allow)
			problem(http.StatusMethodNotAllowed, typeMethod, "%s is not allowed on %s; allowed: %s", r.Method, r.URL.Path, allow).write(w, r)
		})
	}
	mux.HandleFunc(routeUnknownPath, func(w http.ResponseWriter, r *http.Request) {
		problem(http.StatusNotFound, typeNotFound, "no such endpoint: %s %s (docs/api.yaml lists them)", r.Method, r.URL.Path).write(w, r)
	})
	return s.observe(mux)
}

// observe counts and times each request by route and logs it, never with
// its payload, query or headers (tokens).
func (s *Server) observe(next *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &recorder{ResponseWriter: w, code: http.StatusOK}
		next.ServeHTTP(rec, r)
		route := r.Pattern
		if route == "" {
			_, route = next.Handler(r)
		}
		took := time.Since(start)
		s.metrics.requests.WithLabelValues(route, strconv.Itoa(rec.code)).Inc()
		s.metrics.duration.WithLabelValues(route).Observe(took.Seconds())
		level, msg := slog.LevelDebug, "request"
		if rec.code >= 500 {
			level, msg = slog.LevelWarn, "request failed"
		}
		if s.cfg.Log.Enabled(r.Context(), level) {
			args := []any{"method", r.Method, "path", r.URL.Path, "route", route, "status", rec.code,
				"bytes", rec.bytes, "took", took.Round(time.Microsecond), "remote", r.RemoteAddr}
			if rec.detail != "" {
				args = append(args, "err", rec.detail)
			}
			s.cfg.Log.Log(r.Context(), level, msg, args...)
		}
	})
}

// recorder remembers a response's status code and size.
type recorder struct {
	http.ResponseWriter
	code   int
	bytes  int
	detail string // a 5xx's cause, for the log
}

func (r *recorder) WriteHeader(code int) {
	r.code = code
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	n, err := r.ResponseWriter.Write(b)
	r.bytes += n
	return n, err
}

// Unwrap lets http.ResponseController reach the connection.
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// noteFailure keeps the cause of a 5xx for the request's log line.
func noteFailure(w http.ResponseWriter, err error) {
	if r, ok := w.(*recorder); ok {
		r.detail = err.Error()
	}
}

// metrics are the API's Prometheus metrics.
type metrics struct {
	requests  *prometheus.CounterVec
	duration  *prometheus.HistogramVec
	submitted *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "millrace_api_requests_total",
			Help: "HTTP API requests answered, by route (the net/http pattern) and status code."}, []string{"route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "millrace_api_request_duration_seconds",
			Help:    "Time to answer an HTTP API request, by route; long-polls count their wait.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}}, []string{"route"}),
		submitted: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "millrace_api_jobs_submitted_total",
			Help: "Jobs submitted over HTTP whose record the broker acknowledged, by pipeline."}, []string{"pipeline"}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.requests, m.duration, m.submitted} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
