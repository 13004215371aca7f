// Package api is millrace's HTTP jobs API: submit a job to a pipeline
// (202 Accepted and a status URL, once the broker took its record), ask
// its status, long-poll for its result — the asynchronous request-reply
// pattern. docs/api.yaml (OpenAPI 3) is its contract; a test checks the
// handlers against it.
//
// A Server holds no state of its own: a job's status is folded from the
// pipeline's events topic (jobs.View, following it), so any number of
// servers answer the same for the same job.
package api

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/IBM/sarama"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/millrace/millrace/jobs"
	"github.com/millrace/millrace/pipeline"
	"github.com/millrace/millrace/transport"
)

// Config is what a [Server] serves and with what.
type Config struct {
	// Plan holds the pipelines; Plan.API says how to serve.
	Plan *pipeline.Plan
	// Client reads the outputs of finished jobs and the ends of the events
	// topics' partitions (for read-your-writes); the caller closes it after
	// Close.
	Client sarama.Client
	// Brokers are where the views of the jobs' events connect: each view
	// has a client of its own (see [ViewConfig]).
	Brokers []string
	// Publisher produces the submitted records (see [ProducerConfig]);
	// the caller closes it after Close.
	Publisher *transport.Publisher
	// Registerer gets the API's metrics (nil: none).
	Registerer prometheus.Registerer
	// Log gets a line per request at debug level (a failed one at warn),
	// never with a payload or a token (nil: none).
	Log *slog.Logger
	// Now is the clock of the accepted events (nil: time.Now).
	Now func() time.Time
}

// retryAfterUnavailable is the Retry-After of a 503.
const retryAfterUnavailable = 5 * time.Second

// compactAfter is how long after it finished a job's fold stays in a
// view's memory; later, its status is read again from its events when
// asked (jobs.ViewConfig.Compact): a server's memory grows by ~100 bytes
// per job of results.keep, not ~1.7 KB.
const compactAfter = time.Minute

// retryAfterRunning is the Retry-After of a job that has not finished.
const retryAfterRunning = time.Second

// Server serves the API. It is safe for concurrent use.
type Server struct {
	cfg       Config
	api       pipeline.APIPlan
	pipelines map[string]*pipeline.PipelinePlan
	tokens    []token
	metrics   *metrics
	handler   http.Handler

	ctx    context.Context // ends on Close
	cancel context.CancelFunc
	wg     sync.WaitGroup
	// draining ends on Drain: long-polls answer at once.
	draining context.Context
	drain    context.CancelFunc

	mu      sync.Mutex
	views   map[string]*jobs.View // by pipeline, once caught up
	clients []sarama.Client       // the views', closed after them
	opening map[string]error      // pipelines whose view is not open yet, and why
}

// token is an accepted bearer token: its SHA-256 (compared in constant
// time, whatever the lengths) and the pipelines it may use (nil: all).
type token struct {
	sum       [sha256.Size]byte
	pipelines []string
}

// New returns a server of cfg's pipelines. It starts opening a view of
// the events of each pipeline with results in the background: until a
// view caught up with its topic, status requests of its pipeline answer
// 503 and [Server.Ready] says so; submissions are served at once.
func New(cfg Config) (*Server, error) {
	if cfg.Plan == nil || cfg.Client == nil || cfg.Publisher == nil || len(cfg.Brokers) == 0 {
		return nil, errors.New("api: a plan, a client, brokers and a publisher are needed")
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Server{cfg: cfg, api: cfg.Plan.API, pipelines: map[string]*pipeline.PipelinePlan{},
		views: map[string]*jobs.View{}, opening: map[string]error{}}
	for _, t := range s.api.Tokens {
		s.tokens = append(s.tokens, token{sum: sha256.Sum256([]byte(t.Token)), pipelines: t.Pipelines})
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	s.metrics = m
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.draining, s.drain = context.WithCancel(context.Background())
	var results []*pipeline.PipelinePlan
	for i := range cfg.Plan.Pipelines {
		pl := &cfg.Plan.Pipelines[i]
		s.pipelines[pl.Name] = pl
		if pl.Results != nil {
			s.opening[pl.Name] = errors.New("reading its job events")
			results = append(results, pl)
		}
	}
	// Only once the maps are filled: openView writes opening (under mu).
	for _, pl := range results {
		s.wg.Go(func() { s.openView(pl) })
	}
	s.handler = s.routes()
	return s, nil
}

// openView opens the view of pl's job events, trying again with backoff
// while its events topic does not exist or Kafka fails.
func (s *Server) openView(pl *pipeline.PipelinePlan) {
	src := jobs.Source{Shape: *jobs.ShapeOf(*pl), Topic: pl.Results.EventsTopic, Keep: pl.Results.Keep}
	wait := 250 * time.Millisecond
	for {
		v, err := s.newView(src)
		s.mu.Lock()
		switch {
		case err == nil && s.ctx.Err() == nil:
			s.views[pl.Name] = v
			delete(s.opening, pl.Name)
		case err == nil:
			v.Close()
		default:
			s.opening[pl.Name] = err
		}
		s.mu.Unlock()
		if err == nil || s.ctx.Err() != nil {
			return
		}
		s.cfg.Log.Warn("cannot read the job events yet; trying again", "pipeline", pl.Name, "retry_in", wait, "err", err)
		select {
		case <-s.ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, 5*time.Second)
	}
}

// ViewConfig is the client config of a view of job events: transport's,
// with fetches that the broker answers after 100 ms when it has nothing
// (sarama's default is 500 ms): the requests the view makes besides (the
// partitions' ends a status request reads) queue behind its fetch on the
// connection.
func ViewConfig(plan *pipeline.Plan) (*sarama.Config, error) {
	c, err := plan.SaramaConfig()
	if err != nil {
		return nil, err
	}
	c.Consumer.MaxWaitTime = 100 * time.Millisecond
	return c, nil
}

// newView opens a view of src's job events that follows them, on a client
// of its own (closed with it).
func (s *Server) newView(src jobs.Source) (*jobs.View, error) {
	cfg, err := ViewConfig(s.cfg.Plan)
	if err != nil {
		return nil, err
	}
	client, err := sarama.NewClient(s.cfg.Brokers, cfg)
	if err != nil {
		return nil, err
	}
	v, err := jobs.NewView(s.ctx, client, jobs.ViewConfig{Source: src, Follow: true, Compact: compactAfter,
		Offsets: s.cfg.Client, Log: s.cfg.Log})
	if err != nil {
		client.Close()
		return nil, err
	}
	s.mu.Lock()
	s.clients = append(s.clients, client)
	s.mu.Unlock()
	return v, nil
}

// Ready reports whether every pipeline's job view caught up, and if not,
// why not (for /readyz).
func (s *Server) Ready() (bool, []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var why []string
	for name, err := range s.opening {
		why = append(why, fmt.Sprintf("api: the jobs of pipeline %s: %v", name, err))
	}
	slices.Sort(why)
	return len(why) == 0, why
}

// Handler is the API's HTTP handler.
func (s *Server) Handler() http.Handler { return s.handler }

// Drain ends the long-polls in progress, and makes those to come answer
// at once, with the job's status then: for a graceful stop, before the
// HTTP server's Shutdown waits for requests in progress.
func (s *Server) Drain() { s.drain() }

// Close stops reading job events. Requests still waiting for a job end
// with 503.
func (s *Server) Close() {
	s.drain()
	s.cancel()
	s.wg.Wait()
	s.mu.Lock()
	views := s.views
	s.views = map[string]*jobs.View{}
	s.mu.Unlock()
	for _, v := range views {
		v.Close()
	}
	for _, c := range s.clients {
		_ = c.Close()
	}
}

// view is the open view of pipeline name's jobs, or the problem of asking
// for them: 409 for a pipeline without results, 503 while it opens.
func (s *Server) view(name string) (*jobs.View, *Problem) {
	pl := s.pipelines[name]
	if pl.Results == nil {
		return nil, problem(http.StatusConflict, typeNoResults,
			"pipeline %s keeps no job results, so its jobs have no status: add a results: block to it in the pipelines file "+
				"(docs/jobs.md), or have its last stage write the outcome where your app reads it", name)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if v := s.views[name]; v != nil {
		return v, nil
	}
	p := problem(http.StatusServiceUnavailable, typeNotReady, "the jobs of pipeline %s are not readable yet: %v", name, s.opening[name])
	p.RetryAfter = retryAfterUnavailable
	return nil, p
}

// authorize checks r's bearer token (RFC 6750) and returns the pipelines
// it may use (nil: all).
func (s *Server) authorize(r *http.Request) (*token, *Problem) {
	if len(s.tokens) == 0 {
		return &token{}, nil
	}
	scheme, given, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	if !strings.EqualFold(scheme, "Bearer") || given == "" { // the scheme is case-insensitive (RFC 9110 §11.1)
		return nil, problem(http.StatusUnauthorized, typeUnauthorized, "this API needs a bearer token: send Authorization: Bearer <token>")
	}
	sum := sha256.Sum256([]byte(given))
	var found *token
	for i := range s.tokens { // every one, so the time says nothing of which matched
		if subtle.ConstantTimeCompare(sum[:], s.tokens[i].sum[:]) == 1 {
			found = &s.tokens[i]
		}
	}
	if found == nil {
		return nil, problem(http.StatusUnauthorized, typeUnauthorized, "the bearer token is not one this API accepts")
	}
	return found, nil
}

// allows reports whether t may use pipeline name.
func (t *token) allows(name string) bool {
	return t.pipelines == nil || slices.Contains(t.pipelines, name)
}

// pipeline is the pipeline of r's {pipeline}, if t may use it.
func (s *Server) pipeline(r *http.Request, t *token) (*pipeline.PipelinePlan, *Problem) {
	name := r.PathValue("pipeline")
	pl := s.pipelines[name]
	if pl == nil {
		return nil, problem(http.StatusNotFound, typeUnknownPipeline, "no pipeline named %q (GET /v1/pipelines lists them)", name)
	}
	if !t.allows(name) {
		return nil, problem(http.StatusForbidden, typeForbidden, "this token may not use pipeline %q", name)
	}
	return pl, nil
}
