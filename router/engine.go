package router

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/IBM/sarama"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/jonboulle/clockwork"

	"github.com/millrace/millrace/filters"
	"github.com/millrace/millrace/internal/scheduler"
	"github.com/millrace/millrace/jobs"
	"github.com/millrace/millrace/kafkaops"
	"github.com/millrace/millrace/pipeline"
	"github.com/millrace/millrace/transport"
)

// EngineConfig configures an [Engine].
type EngineConfig struct {
	Plan *pipeline.Plan
	// Stages to run; empty runs every stage of the plan.
	Stages []pipeline.StagePlan
	// Brokers to use; empty means the plan's brokers.
	Brokers []string
	// StopTimeout bounds a graceful stop: records in flight get this long to
	// finish. Default 30s.
	StopTimeout time.Duration
	// ConnectTimeout bounds waiting for the cluster at start: 0 means 30s,
	// a negative value waits until ctx ends. Each failed attempt is logged.
	ConnectTimeout time.Duration
	// Sarama is the consumers' client config; nil means the plan's
	// ([pipeline.Plan.SaramaConfig]: its client id and Security).
	Sarama *sarama.Config
	// Producer is the producer's client config; nil means the plan's
	// ([pipeline.Plan.ProducerConfig]: its client id, compression and
	// Security).
	Producer *sarama.Config
	Logger   *slog.Logger
	// Observe, if set, gets an Event for each hand-out of a record at every
	// stage (the metrics/status slot of the middleware chain). It runs on
	// the handler's goroutine and must not block.
	Observe Observer
	// Metrics, if set, are where the stages count (NewMetrics); the engine
	// then also exports the consumer lag of every stage of the plan, every
	// LagInterval (default 5 s).
	Metrics     *Metrics
	LagInterval time.Duration
	// NoSchedules keeps the engine out of the scheduler: it never fires
	// the plan's schedules (`millrace run --no-schedules`). Otherwise an
	// engine whose plan has enabled schedules joins the scheduler group,
	// and fires them while it leads (internal/scheduler).
	NoSchedules bool
	// Clock decides when the schedules' ticks are due (nil: the real
	// clock).
	Clock clockwork.Clock
	// SchedulesOnly runs no stage, only the scheduler (`millrace
	// scheduler`): the engine creates the plan's topics, then fires the
	// schedules while it leads, until ctx ends.
	SchedulesOnly bool
	// InstanceID, if set, makes the process a static member of each
	// stage's consumer group (group.instance.id, KIP-345): when it
	// restarts with the same id within the session timeout, the group
	// gives it its partitions back without a rebalance; when it stops, its
	// partitions wait for its session timeout before they move. Each
	// process of a stage needs its own (a pod's name). Kafka's rule: 1 to
	// 249 of [a-zA-Z0-9._-].
	InstanceID string
}

// validInstanceID is Kafka's rule for a group.instance.id (the topic name
// rule: Topic.validate in Kafka's common/internals).
var validInstanceID = regexp.MustCompile(`^[a-zA-Z0-9._-]{1,249}$`)

// ValidInstanceID reports whether id may be a group.instance.id
// ([EngineConfig.InstanceID]): 1 to 249 of letters, digits, '.', '_' and
// '-', Kafka's rule.
func ValidInstanceID(id string) bool { return validInstanceID.MatchString(id) }

func (c *EngineConfig) setDefaults() {
	if len(c.Stages) == 0 && c.Plan != nil && !c.SchedulesOnly {
		c.Stages, _ = c.Plan.Stages()
	}
	if len(c.Brokers) == 0 && c.Plan != nil {
		c.Brokers = c.Plan.Brokers
	}
	if c.StopTimeout <= 0 {
		c.StopTimeout = 30 * time.Second
	}
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = 30 * time.Second
	}
	if c.LagInterval <= 0 {
		c.LagInterval = 5 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// clientConfigs fills in Sarama and Producer from the plan: its client id,
// compression and Security. The error is Security's (a TLS file that
// cannot be read).
func (c *EngineConfig) clientConfigs() error {
	var err error
	if c.Sarama == nil && c.Plan != nil {
		if c.Sarama, err = c.Plan.SaramaConfig(); err != nil {
			return err
		}
	}
	if c.Producer == nil && c.Plan != nil {
		if c.Producer, err = c.Plan.ProducerConfig(); err != nil {
			return err
		}
	}
	return nil
}

// Validate reports what is missing from the config.
func (c EngineConfig) Validate() error {
	switch {
	case c.Plan == nil:
		return errors.New("no plan")
	case len(c.Brokers) == 0:
		return errors.New("no brokers")
	case len(c.Stages) == 0 && !c.SchedulesOnly:
		return errors.New("no stages to run")
	case c.SchedulesOnly && (len(c.Stages) > 0 || c.NoSchedules):
		return errors.New("schedules only, but stages to run or no schedules")
	case c.InstanceID != "" && !validInstanceID.MatchString(c.InstanceID):
		return fmt.Errorf("instance id %q: want 1 to 249 of letters, digits, '.', '_' and '-' (Kafka's rule for group.instance.id)",
			c.InstanceID)
	}
	return nil
}

// Engine runs stages of a plan: each a Watermill handler reading its input
// topic in its own consumer group and publishing to the next topic.
type Engine struct {
	cfg   EngineConfig
	ready chan struct{}

	mu       sync.Mutex
	stages   []*stage // running, once Run made them
	started  bool     // the stages were made and the producer connected
	stopping bool     // a graceful stop began
}

// NewEngine checks cfg and returns an engine; Run starts it.
func NewEngine(cfg EngineConfig) (*Engine, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("invalid engine config: %w", err)
	}
	if err := cfg.clientConfigs(); err != nil {
		return nil, err
	}
	return &Engine{cfg: cfg, ready: make(chan struct{})}, nil
}

// Ready is closed once every stage has joined its consumer group's
// subscription and is running.
func (e *Engine) Ready() <-chan struct{} { return e.ready }

// Readiness reports whether the engine should get work (Kubernetes'
// readiness, a load balancer's check): every stage it runs has joined its
// consumer group and the producer is connected, and no graceful stop has
// begun. notReady names what is not ready ("stopping", "starting", or
// "stage P/S has not joined its consumer group").
func (e *Engine) Readiness() (ready bool, notReady []string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	switch {
	case e.stopping:
		return false, []string{"stopping"}
	case !e.started:
		return false, []string{"starting: connecting to Kafka, creating topics"}
	}
	for _, s := range e.stages {
		if !s.joined.Load() {
			notReady = append(notReady, fmt.Sprintf("stage %s has not joined its consumer group", s.plan.ID()))
		}
	}
	return len(notReady) == 0, notReady
}

// joined notes that stage s joined its consumer group; it reports false
// once a graceful stop began (the stage is not ready then).
func (e *Engine) joined(s *stage) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	s.joined.Store(true)
	return !e.stopping
}

// stop marks the engine stopping: not ready, its stages' ready gauges 0.
func (e *Engine) stop() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.stopping = true
	for _, s := range e.stages {
		s.setReady(false)
	}
}

// Run creates the plan's topics, runs the stages until ctx ends, then stops
// them gracefully: no new records are fetched, records in flight finish and
// are committed (bounded by StopTimeout). It returns nil after a clean stop.
func (e *Engine) Run(ctx context.Context) error {
	log := e.cfg.Logger
	cctx, cancel := ctx, context.CancelFunc(func() {})
	if e.cfg.ConnectTimeout > 0 {
		cctx, cancel = context.WithTimeout(ctx, e.cfg.ConnectTimeout)
	}
	client, err := transport.Connect(cctx, e.cfg.Brokers, e.cfg.Sarama, log)
	cancel()
	if err != nil {
		return err
	}
	defer client.Close()
	if err := kafkaops.EnsureTopics(client, e.topics(), e.cfg.Plan.ReplicationFactor, log); err != nil {
		return err
	}
	all, _ := e.cfg.Plan.Stages()
	for _, sp := range all {
		if _, err := kafkaops.CoPartition(client, sp.ID(), stageInputs(sp), ownTopics(sp), e.cfg.Plan.ReplicationFactor, log); err != nil {
			return err
		}
	}
	// The scheduler and the job folders share this producer; each stage
	// has its own (below).
	pub, err := transport.NewPublisher(e.cfg.Brokers, e.cfg.Producer)
	if err != nil {
		return err
	}
	defer pub.Close()
	// The job folders, the scheduler and the lag exporter run until Run
	// returns, also when it fails early: they end (stop) and are waited
	// for before the publisher and the client close.
	var workers sync.WaitGroup
	defer workers.Wait()
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	var sch *scheduler.Scheduler
	if e.cfg.NoSchedules && len(e.cfg.Plan.EnabledSchedules()) > 0 {
		log.Info("this process fires no schedules (--no-schedules)")
	}
	if !e.cfg.NoSchedules {
		if sch, err = scheduler.New(scheduler.Config{Plan: e.cfg.Plan, Brokers: e.cfg.Brokers, Sarama: e.cfg.Sarama,
			Client: client, Publisher: pub, Clock: e.cfg.Clock, Log: log, Metrics: e.cfg.Metrics.scheduleMetrics()}); err != nil {
			return err
		}
	}
	if e.cfg.SchedulesOnly {
		// The scheduler is the process: its failure is the process's.
		if sch == nil {
			return errors.New("no enabled schedule to fire")
		}
		e.mu.Lock()
		e.started = true
		e.mu.Unlock()
		go func() { <-ctx.Done(); e.stop() }()
		close(e.ready)
		log.Info("running the scheduler only")
		if err := sch.Run(ctx); err != nil {
			return err
		}
		log.Info("stopped")
		return nil
	}
	if sch != nil {
		workers.Go(func() {
			if err := sch.Run(ctx); err != nil {
				log.Error("scheduler stopped: this process fires no schedules", "err", err)
			}
		})
	}
	for _, pp := range e.resultsPipelines() {
		workers.Go(func() {
			if err := jobs.RunFolder(ctx, jobs.FolderConfig{Pipeline: pp, Brokers: e.cfg.Brokers, Sarama: e.cfg.Sarama,
				Client: client, Publisher: pub, Metrics: e.cfg.Metrics.jobMetrics(), Log: log}); err != nil {
				log.Error("job results stopped", "pipeline", pp.Name, "err", err)
			}
		})
	}
	r, err := message.NewRouter(message.RouterConfig{CloseTimeout: e.cfg.StopTimeout + 5*time.Second},
		wmLogger{log})
	if err != nil {
		return fmt.Errorf("create router: %w", err)
	}
	var stages []*stage
	var pubs []*transport.Publisher
	defer func() {
		for _, s := range stages {
			s.close()
		}
		for _, p := range pubs {
			if err := p.Close(); err != nil {
				log.Warn("closing a stage's producer", "err", err)
			}
		}
	}()
	for _, sp := range e.cfg.Stages {
		// A producer per stage: an idempotent producer has one produce
		// request in flight per broker (sarama), so stages sharing one
		// wait for each other's round trips.
		spub, err := transport.NewPublisher(e.cfg.Brokers, e.cfg.Producer)
		if err != nil {
			return fmt.Errorf("stage %s: %w", sp.ID(), err)
		}
		pubs = append(pubs, spub)
		s, err := e.addStage(r, client, spub, sp)
		if err != nil {
			return err
		}
		sub := s.sub
		spub.Coalesce(coalesceMax, coalesceWait, func() bool { return sub.Ready() > 0 })
		stages = append(stages, s)
	}
	e.mu.Lock()
	e.stages, e.started = stages, true
	e.mu.Unlock()
	go func() {
		<-ctx.Done()
		e.stop()
	}()
	if e.cfg.Metrics != nil {
		workers.Go(func() { exportLag(ctx, client, e.cfg.Metrics, all, e.cfg.LagInterval, log) })
	}
	go func() {
		select {
		case <-r.Running():
			for _, s := range stages {
				s.log.Info("stage ready", "input", s.plan.Input, "output", s.plan.Output,
					"group", s.plan.Group, "concurrency", s.plan.Concurrency)
			}
			close(e.ready)
		case <-ctx.Done():
		}
	}()
	if err := r.Run(ctx); err != nil {
		return fmt.Errorf("router: %w", err)
	}
	log.Info("stopped")
	return nil
}

func (e *Engine) addStage(r *message.Router, client sarama.Client, pub *transport.Publisher, sp pipeline.StagePlan) (*stage, error) {
	s, err := newStage(sp, pub, e.cfg.Logger)
	if err != nil {
		return nil, err
	}
	s.client, s.rf, s.observe = client, e.cfg.Plan.ReplicationFactor, e.cfg.Observe
	s.results = newEmitter(s)
	if sp.Dedup != nil {
		s.dedup = newDedupStore(*sp.Dedup, client, pub, s.log)
	}
	cfg, drain := e.groupConfig(sp, s.log)
	var fetched func()
	if e.cfg.Metrics != nil {
		fetched = func() { s.m.consumed.Inc() } // s.m is set before the subscriber runs
	}
	sub, err := transport.NewSubscriber(transport.SubscriberConfig{
		Brokers: e.cfg.Brokers, Group: sp.Group, Sarama: cfg,
		DrainTimeout: drain, MaxInFlight: sp.MaxInFlight, Logger: s.log, SettleFromContext: true,
		Unordered: sp.Ordering == pipeline.OrderNone,
		DueHeader: filters.HeaderRetryAt, DueTopics: sp.RetryTopics,
		OnAssign: func(ctx context.Context, sess sarama.ConsumerGroupSession) error {
			if err := s.assigned(ctx, client, sess); err != nil {
				return err
			}
			if e.joined(s) {
				s.setReady(true)
			}
			return nil
		},
		OnRevoke: s.revoked,
		Fetched:  fetched,
	})
	if err != nil {
		s.close()
		return nil, err
	}
	s.sub = sub
	s.m = e.cfg.Metrics.forStage(sp.Pipeline, sp.Name, sub.InFlight)
	h := r.AddConsumerHandler(sp.ID(), strings.Join(s.topics(), ","), sub, func(m *message.Message) error {
		_, err := s.handle(m)
		return err
	})
	h.AddMiddleware(chain(s).middleware()...)
	return s, nil
}

// rebalanceMargin is how much longer than its drain (plus transport.DrainGrace) a
// stage's rebalance timeout is: time to commit and rejoin.
const rebalanceMargin = 5 * time.Second

// groupConfig is the consumer config of a stage's group, and how long the
// stage drains its records on a rebalance or stop. The session and
// rebalance timeouts are the stage's (pipelines.yaml) or the engine
// config's. A member that has not rejoined within the rebalance timeout is
// expelled, and its partitions go to others while it still works on them:
// so the rebalance timeout is raised to cover the drain (StopTimeout, then
// transport.DrainGrace, then rebalanceMargin) unless the stage sets one; then the
// drain is cut to fit in it.
func (e *Engine) groupConfig(sp pipeline.StagePlan, log *slog.Logger) (*sarama.Config, time.Duration) {
	c := *e.cfg.Sarama
	session, rebalance := c.Consumer.Group.Session.Timeout, c.Consumer.Group.Rebalance.Timeout
	if sp.SessionTimeout > 0 {
		session = sp.SessionTimeout
	}
	drain := e.cfg.StopTimeout
	need := drain + transport.DrainGrace + rebalanceMargin
	switch {
	case sp.RebalanceTimeout > 0:
		rebalance = sp.RebalanceTimeout
		if rebalance < need {
			drain = max(rebalance-transport.DrainGrace-rebalanceMargin, time.Second)
			log.Warn("rebalance_timeout is shorter than the stop timeout plus a grace; records in flight get less time to finish "+
				"on a rebalance or stop", "rebalance_timeout", rebalance, "stop_timeout", e.cfg.StopTimeout, "drain", drain)
		}
	case rebalance < need:
		rebalance = need
	}
	transport.SetGroupTimeouts(&c, session, rebalance)
	c.Consumer.Group.InstanceId = e.cfg.InstanceID
	return &c, drain
}

// topics are the plan's topics but the stages' own (see ownTopics), which
// CoPartition creates to match their inputs.
func (e *Engine) topics() []pipeline.Topic {
	own := map[string]bool{}
	all, _ := e.cfg.Plan.Stages()
	for _, sp := range all {
		for _, t := range ownTopics(sp) {
			own[t.Name] = true
		}
	}
	var out []pipeline.Topic
	for _, t := range e.cfg.Plan.Topics() {
		if !own[t.Name] {
			out = append(out, pipeline.Topic{Name: t.Name, Partitions: t.Partitions, Config: t.Config})
		}
	}
	return out
}

// stageInputs are the topics a stage reads records from (not its tiers).
func stageInputs(sp pipeline.StagePlan) []string {
	var ts []string
	for _, in := range sp.Inputs {
		ts = append(ts, in.Topic)
	}
	if len(ts) == 0 {
		ts = append(ts, sp.Input)
	}
	return ts
}

// ownTopics are the topics partitioned like a stage's inputs: its retry
// tiers and its dedup changelog.
func ownTopics(sp pipeline.StagePlan) []pipeline.Topic {
	var ts []pipeline.Topic
	for _, t := range sp.RetryTopics {
		ts = append(ts, pipeline.Topic{Name: t})
	}
	if sp.Dedup != nil {
		ts = append(ts, pipeline.Topic{Name: sp.Dedup.Changelog, Config: pipeline.ChangelogConfig(sp.Dedup.Window)})
	}
	return ts
}

// resultsPipelines are the pipelines with `results:` of which the engine
// runs a stage: it follows their jobs (jobs.RunFolder).
func (e *Engine) resultsPipelines() []pipeline.PipelinePlan {
	var out []pipeline.PipelinePlan
	for _, pp := range e.cfg.Plan.Pipelines {
		if pp.Results != nil && slices.ContainsFunc(e.cfg.Stages, func(sp pipeline.StagePlan) bool { return sp.Pipeline == pp.Name }) {
			out = append(out, pp)
		}
	}
	return out
}
