package prometheus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Result is the answer of an instant query.
type Result struct {
	// Type is Prometheus's resultType: "vector", "scalar", "matrix" or
	// "string".
	Type string
	// Samples holds a vector's samples, or a scalar's one sample (with no
	// labels). It is empty for the other types.
	Samples []Sample
	// Raw is the result as Prometheus sent it.
	Raw json.RawMessage
	// Warnings are the warnings Prometheus sent with the answer.
	Warnings []string
}

// Sample is one sample of a vector: a series' labels and its value.
type Sample struct {
	Metric map[string]string
	Value  float64
}

// apiResponse is the envelope of every answer of Prometheus's HTTP API.
type apiResponse struct {
	Status    string          `json:"status"`
	Data      json.RawMessage `json:"data"`
	ErrorType string          `json:"errorType"`
	Error     string          `json:"error"`
	Warnings  []string        `json:"warnings"`
}

// api calls an endpoint of the HTTP API (GET with params, or POST of form
// when form is set) and returns the data of a successful answer.
func (s *Server) api(ctx context.Context, path string, form url.Values) (json.RawMessage, []string, error) {
	var req *http.Request
	var err error
	if form != nil {
		req, err = http.NewRequestWithContext(ctx, http.MethodPost, s.URL()+path, strings.NewReader(form.Encode()))
		if req != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
	} else {
		req, err = http.NewRequestWithContext(ctx, http.MethodGet, s.URL()+path, nil)
	}
	if err != nil {
		return nil, nil, err
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, nil, err
	}
	var r apiResponse
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, nil, fmt.Errorf("%s: %s: not an API answer: %.200q", path, resp.Status, body)
	}
	if r.Status != "success" {
		return nil, r.Warnings, fmt.Errorf("%s: %s: %s", path, r.ErrorType, r.Error)
	}
	return r.Data, r.Warnings, nil
}

// Query evaluates expr as an instant query at the current time
// (/api/v1/query). A parse or evaluation error is an error naming
// Prometheus's error type ("bad_data" for a parse error).
func (s *Server) Query(ctx context.Context, expr string) (Result, error) {
	data, warnings, err := s.api(ctx, "/api/v1/query", url.Values{"query": {expr}})
	if err != nil {
		return Result{}, fmt.Errorf("prometheus: query %q: %w", expr, err)
	}
	var d struct {
		ResultType string          `json:"resultType"`
		Result     json.RawMessage `json:"result"`
	}
	if err := json.Unmarshal(data, &d); err != nil {
		return Result{}, fmt.Errorf("prometheus: query %q: %w", expr, err)
	}
	r := Result{Type: d.ResultType, Raw: d.Result, Warnings: warnings}
	switch d.ResultType {
	case "vector":
		var v []struct {
			Metric map[string]string `json:"metric"`
			Value  [2]any            `json:"value"`
		}
		if err := json.Unmarshal(d.Result, &v); err != nil {
			return Result{}, fmt.Errorf("prometheus: query %q: %w", expr, err)
		}
		for _, smp := range v {
			f, err := parseValue(smp.Value)
			if err != nil {
				return Result{}, fmt.Errorf("prometheus: query %q: %w", expr, err)
			}
			r.Samples = append(r.Samples, Sample{Metric: smp.Metric, Value: f})
		}
	case "scalar":
		var v [2]any
		if err := json.Unmarshal(d.Result, &v); err != nil {
			return Result{}, fmt.Errorf("prometheus: query %q: %w", expr, err)
		}
		f, err := parseValue(v)
		if err != nil {
			return Result{}, fmt.Errorf("prometheus: query %q: %w", expr, err)
		}
		r.Samples = []Sample{{Metric: map[string]string{}, Value: f}}
	}
	return r, nil
}

// parseValue reads the [time, "value"] pair of a sample.
func parseValue(v [2]any) (float64, error) {
	s, ok := v[1].(string)
	if !ok {
		return 0, fmt.Errorf("sample value %v is not a string", v[1])
	}
	return strconv.ParseFloat(s, 64) // also "NaN", "+Inf", "-Inf"
}

// QueryValue evaluates expr and returns its one value: a scalar, or a
// vector of exactly one sample. Any other answer is an error.
func (s *Server) QueryValue(ctx context.Context, expr string) (float64, error) {
	r, err := s.Query(ctx, expr)
	if err != nil {
		return 0, err
	}
	if len(r.Samples) != 1 {
		return 0, fmt.Errorf("prometheus: query %q: want one sample, got %d (%s %s)", expr, len(r.Samples), r.Type, r.Raw)
	}
	return r.Samples[0].Value, nil
}

// AwaitValue evaluates expr until its one value is want (see QueryValue),
// and returns an error with the last answer when ctx ends first. Without
// a deadline on ctx it gives up after a minute.
func (s *Server) AwaitValue(ctx context.Context, expr string, want float64) error {
	ctx, cancel := bounded(ctx, time.Minute)
	defer cancel()
	for {
		got, err := s.QueryValue(ctx, expr)
		if err == nil && got == want {
			return nil
		}
		last := fmt.Sprintf("last value %v", got)
		if err != nil {
			last = "last answer: " + err.Error()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("prometheus: %s never became %v (%v); %s", expr, want, ctx.Err(), last)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// WaitScraped waits until Prometheus has scraped target (host:port) with
// success: up{instance=target} is 1. When ctx ends first (without a
// deadline, after 30s) the error gives the target's last scrape error.
func (s *Server) WaitScraped(ctx context.Context, target string) error {
	ctx, cancel := bounded(ctx, 30*time.Second)
	defer cancel()
	expr := fmt.Sprintf("up{instance=%q}", target)
	for {
		v, err := s.QueryValue(ctx, expr)
		if err == nil && v == 1 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("prometheus: %s was not scraped (%v); %s", target, ctx.Err(), s.targetState(target))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Target is one of Prometheus's active scrape targets.
type Target struct {
	Labels     map[string]string `json:"labels"`
	ScrapeURL  string            `json:"scrapeUrl"`
	Health     string            `json:"health"` // "up", "down" or "unknown"
	LastError  string            `json:"lastError"`
	LastScrape time.Time         `json:"lastScrape"`
}

// Targets returns the active scrape targets (/api/v1/targets).
func (s *Server) Targets(ctx context.Context) ([]Target, error) {
	data, _, err := s.api(ctx, "/api/v1/targets?state=active", nil)
	if err != nil {
		return nil, fmt.Errorf("prometheus: %w", err)
	}
	var d struct {
		ActiveTargets []Target `json:"activeTargets"`
	}
	if err := json.Unmarshal(data, &d); err != nil {
		return nil, fmt.Errorf("prometheus: targets: %w", err)
	}
	return d.ActiveTargets, nil
}

// targetState describes target's last scrape, for error messages.
func (s *Server) targetState(target string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ts, err := s.Targets(ctx)
	if err != nil {
		return err.Error()
	}
	for _, t := range ts {
		if t.Labels["instance"] == target {
			if t.LastError == "" {
				return fmt.Sprintf("%s: health %s, no scrape error", t.ScrapeURL, t.Health)
			}
			return fmt.Sprintf("%s: health %s, last error: %s", t.ScrapeURL, t.Health, t.LastError)
		}
	}
	return fmt.Sprintf("%s is not one of Prometheus's targets", target)
}

// Rule is one alerting or recording rule as Prometheus evaluates it.
type Rule struct {
	Group     string `json:"-"`
	Name      string `json:"name"`
	Query     string `json:"query"`
	Type      string `json:"type"`   // "alerting" or "recording"
	Health    string `json:"health"` // "ok", "err" or "unknown" (not evaluated yet)
	LastError string `json:"lastError"`
	State     string `json:"state"` // of an alert: "inactive", "pending" or "firing"
}

// Rules returns the loaded rules with their health (/api/v1/rules).
func (s *Server) Rules(ctx context.Context) ([]Rule, error) {
	data, _, err := s.api(ctx, "/api/v1/rules", nil)
	if err != nil {
		return nil, fmt.Errorf("prometheus: %w", err)
	}
	var d struct {
		Groups []struct {
			Name  string `json:"name"`
			Rules []Rule `json:"rules"`
		} `json:"groups"`
	}
	if err := json.Unmarshal(data, &d); err != nil {
		return nil, fmt.Errorf("prometheus: rules: %w", err)
	}
	var rules []Rule
	for _, g := range d.Groups {
		for _, r := range g.Rules {
			r.Group = g.Name
			rules = append(rules, r)
		}
	}
	return rules, nil
}

// AwaitRulesEvaluated waits until every loaded rule has been evaluated
// once and returns them; their Health and LastError tell how it went.
// Without a deadline on ctx it gives up after 30s.
func (s *Server) AwaitRulesEvaluated(ctx context.Context) ([]Rule, error) {
	ctx, cancel := bounded(ctx, 30*time.Second)
	defer cancel()
	for {
		rules, err := s.Rules(ctx)
		if err == nil && evaluated(rules) {
			return rules, nil
		}
		select {
		case <-ctx.Done():
			if err == nil {
				err = errors.New("some rules are not evaluated yet")
			}
			return rules, fmt.Errorf("prometheus: rules (%v): %w", ctx.Err(), err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// evaluated reports whether rules is not empty and every rule in it has
// been evaluated.
func evaluated(rules []Rule) bool {
	for _, r := range rules {
		if r.Health == "unknown" || r.Health == "" {
			return false
		}
	}
	return len(rules) > 0
}

// bounded gives ctx the timeout d unless it has a deadline.
func bounded(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, d)
}
