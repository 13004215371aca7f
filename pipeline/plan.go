package pipeline

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/millrace/millrace/transport"

	"github.com/millrace/millrace/filters"
)

// Plan is what the engine runs: every stage with its topics and consumer
// group, and every topic to create.
type Plan struct {
	// AdminAddr and AdminToken are the admin server's address and token
	// from the file ("" if it sets none).
	AdminAddr, AdminToken string
	// AdminAddrAt is where the file sets AdminAddr, as file:line:col
	// ("" if it sets none): a command that cannot serve there (an address
	// other hosts can reach, and no token where it runs) names it.
	AdminAddrAt string
	// API is how the HTTP jobs API serves: the file's api block with its
	// defaults.
	API APIPlan
	// Brokers of the Kafka cluster; empty means the embedded broker.
	Brokers     []string
	ClientID    string
	Compression string
	// Security is how every client reaches the brokers (TLS, SASL): the
	// file's broker.tls and broker.sasl; nil is PLAINTEXT.
	Security *transport.Security
	// Tuning is the file's broker.linger, fetch_min_bytes, fetch_max_wait
	// and max_partition_fetch_bytes; zero fields keep the defaults.
	Tuning transport.Tuning
	// ReplicationFactor of created topics (-1: the broker's default).
	ReplicationFactor int
	Pipelines         []PipelinePlan
	// Scheduler is what the schedulers of every pipeline's schedules
	// share: their topic, group and group timeouts.
	Scheduler SchedulerPlan
}

// PipelinePlan is one pipeline of a [Plan].
type PipelinePlan struct {
	Name        string
	Description string
	Input       string
	// Output is the topic the last stage writes; "" drops its outputs.
	Output string
	// Quarantine is where records that failed for good go.
	Quarantine string
	Partitions int
	// Priority lists the input topics with their weights, heaviest first;
	// Input is one of them. Without a priority list it is just Input.
	Priority []WeightedTopic
	Stages   []StagePlan
	// Results is nil unless the pipeline keeps the status of its jobs.
	Results *ResultsPlan
	// Schedules are every schedule of the pipeline, enabled or not, in
	// file order.
	Schedules []SchedulePlan
}

// StagePlan is one stage of a pipeline, as the engine runs it.
type StagePlan struct {
	Pipeline string
	Name     string
	// Index is the 0-based position of the stage in its pipeline, of
	// Stages in all.
	Index, Stages int
	Filter        filters.Spec
	Config        filters.Config
	// Input is the topic the stage consumes; Output the topic it publishes
	// to ("" for a last stage with no pipeline output).
	Input, Output string
	// Quarantine is the pipeline's quarantine topic.
	Quarantine string
	// Group is the stage's consumer group.
	Group       string
	Concurrency int
	MaxInFlight int

	// Inputs are every topic the stage reads records from, with weights:
	// for the first stage the pipeline's priority topics (Input among
	// them), otherwise just Input with weight 1. Retry tier topics are not
	// in it.
	Inputs []WeightedTopic
	// RetryTopics are the stage's retry tier topics, one per Retry.Tiers.
	RetryTopics []string
	Retry       RetryPlan
	Ordering    Ordering
	// Timeout bounds one filter call; 0 means none.
	Timeout time.Duration
	// SessionTimeout is the session timeout of the stage's consumer group
	// (session.timeout.ms): how long the broker waits for a heartbeat of a
	// process before it takes the process's partitions away. 0 means not
	// set: the engine's default (10s).
	SessionTimeout time.Duration
	// RebalanceTimeout is how long a rebalance of the stage's consumer
	// group waits for each process to finish its records and rejoin (the
	// JoinGroup rebalance timeout; max.poll.interval.ms of Java clients).
	// 0 means not set: the engine uses the stage's drain bound plus a
	// margin.
	RebalanceTimeout time.Duration
	// Dedup is nil unless the stage deduplicates.
	Dedup *DedupPlan
	// Scale and Resources are how `millrace deploy render` runs the stage
	// on Kubernetes.
	Scale     ScalePlan
	Resources ResourcesPlan
	// Results is the pipeline's (the same pointer as its PipelinePlan's):
	// nil unless the pipeline keeps the status of its jobs.
	Results *ResultsPlan
}

// ID is "pipeline/stage", the form `millrace run --stage` takes.
func (s StagePlan) ID() string { return s.Pipeline + "/" + s.Name }

// Last reports whether s is the last stage of its pipeline.
func (s StagePlan) Last() bool { return s.Index == s.Stages-1 }

// Topic is a topic the plan needs.
type Topic struct {
	Name       string
	Partitions int
	// Config holds topic configs to create it with (e.g. cleanup.policy).
	Config map[string]string
}

// Plan turns a validated file into the stages and topics to run.
func (f *File) Plan() *Plan {
	pl := &Plan{ReplicationFactor: f.Defaults.ReplicationFactor, API: f.API.apiPlan(),
		Scheduler: SchedulerPlan{Topic: f.Scheduler.topic(), Group: f.Scheduler.group(),
			SessionTimeout: f.Defaults.SessionTimeout, RebalanceTimeout: f.Defaults.RebalanceTimeout}}
	if f.Admin != nil {
		pl.AdminAddr, pl.AdminToken = f.Admin.Addr, f.Admin.Token
		if f.Admin.Set("addr") {
			at := f.Admin.Of("addr")
			pl.AdminAddrAt = fmt.Sprintf("%s:%d:%d", f.Path, at.Line, at.Column)
		}
	}
	if f.Broker != nil {
		pl.Brokers = f.Broker.Brokers
		pl.ClientID = f.Broker.ClientID
		pl.Compression = f.Broker.Compression
		pl.Tuning = f.Broker.tuning()
		pl.Security = f.Broker.security()
	}
	for pi := range f.Pipelines {
		p := &f.Pipelines[pi]
		pp := PipelinePlan{Name: p.Name, Description: p.Description, Input: p.Input,
			Output: p.Output, Quarantine: QuarantineTopic(p.Name), Partitions: p.Partitions,
			Priority: p.inputs(), Results: p.Results.resultsPlan(p.Name), Schedules: p.schedulePlans()}
		for i := range p.Stages {
			st := &p.Stages[i]
			sp := StagePlan{Pipeline: p.Name, Name: st.Name, Index: i, Stages: len(p.Stages), Results: pp.Results,
				Filter: st.filterSpec, Config: st.filterConfig,
				Group: GroupName(p.Name, st.Name), Concurrency: st.Concurrency, MaxInFlight: st.MaxInFlight, Input: p.Input,
				Quarantine: pp.Quarantine, Inputs: slices.Clone(pp.Priority)}
			if i > 0 {
				sp.Input = stageTopic(p.Name, *st)
				sp.Inputs = []WeightedTopic{{Name: sp.Input, Topic: sp.Input, Weight: 1}}
			}
			pol := f.policies(p, st)
			sp.Retry, sp.Ordering, sp.Timeout = pol.retry, pol.ordering, pol.timeout
			sp.SessionTimeout, sp.RebalanceTimeout = pol.sessionTimeout, pol.rebalanceTimeout
			for n := range sp.Retry.Tiers {
				sp.RetryTopics = append(sp.RetryTopics, RetryTopic(p.Name, st.Name, n+1))
			}
			sp.Dedup = st.Dedup.dedupPlan(p.Name, st.Name)
			sp.Scale, sp.Resources = st.Scale.scalePlan(p.Partitions), st.Resources.resourcesPlan()
			if i+1 < len(p.Stages) {
				sp.Output = stageTopic(p.Name, p.Stages[i+1])
			} else {
				sp.Output = p.Output
			}
			pp.Stages = append(pp.Stages, sp)
		}
		pl.Pipelines = append(pl.Pipelines, pp)
	}
	return pl
}

// Pipeline returns the pipeline called name.
func (p *Plan) Pipeline(name string) (*PipelinePlan, error) {
	var names []string
	for i := range p.Pipelines {
		if p.Pipelines[i].Name == name {
			return &p.Pipelines[i], nil
		}
		names = append(names, p.Pipelines[i].Name)
	}
	return nil, fmt.Errorf("no pipeline %q (pipelines: %s)", name, strings.Join(names, ", "))
}

// Stages returns every stage of the plan, or those selected by ids: each
// id is "pipeline/stage", or "pipeline" for all of its stages.
func (p *Plan) Stages(ids ...string) ([]StagePlan, error) {
	var all []StagePlan
	for _, pp := range p.Pipelines {
		all = append(all, pp.Stages...)
	}
	if len(ids) == 0 {
		return all, nil
	}
	var out []StagePlan
	seen := map[string]bool{}
	for _, id := range ids {
		found := false
		for _, s := range all {
			if (s.ID() == id || s.Pipeline == id) && !seen[s.ID()] {
				out = append(out, s)
				seen[s.ID()] = true
			}
			found = found || s.ID() == id || s.Pipeline == id
		}
		if !found {
			var valid []string
			for _, s := range all {
				valid = append(valid, s.ID())
			}
			return nil, fmt.Errorf("no stage %q (stages: %s)", id, strings.Join(valid, ", "))
		}
	}
	return out, nil
}

// Topics returns every topic the plan reads or writes: inputs (priority
// topics among them), topics between stages, outputs, quarantine and retry
// tier topics, dedup changelogs (compacted), and of pipelines with results
// the job events and status topics (see [JobsTopicConfig] and
// [JobStatusTopicConfig]) and the reply topics, and [ScheduleTopic] (one
// partition, [ScheduleTopicConfig]) when a pipeline has schedules, enabled
// or not. Each has the largest partition count of the pipelines that name
// it; a job status topic has as many as its events topic.
func (p *Plan) Topics() []Topic {
	parts := map[string]int{}
	configs := map[string]map[string]string{}
	add := func(name string, n int) {
		if name != "" && parts[name] < n {
			parts[name] = n
		}
	}
	for _, pp := range p.Pipelines {
		add(pp.Input, pp.Partitions)
		add(pp.Quarantine, pp.Partitions)
		for _, wt := range pp.Priority {
			add(wt.Topic, pp.Partitions)
		}
		for _, s := range pp.Stages {
			add(s.Input, pp.Partitions)
			add(s.Output, pp.Partitions)
			for _, t := range s.RetryTopics {
				add(t, pp.Partitions)
			}
			if s.Dedup != nil {
				add(s.Dedup.Changelog, pp.Partitions)
				configs[s.Dedup.Changelog] = ChangelogConfig(s.Dedup.Window)
			}
		}
		if r := pp.Results; r != nil {
			add(r.EventsTopic, pp.Partitions)
			add(r.StatusTopic, pp.Partitions)
			configs[r.EventsTopic] = JobsTopicConfig(r.Keep)
			configs[r.StatusTopic] = JobStatusTopicConfig(r.Keep)
			for _, t := range r.ReplyTopics {
				add(t, pp.Partitions)
			}
		}
	}
	// The folder writes a job's status to the partition of the status
	// topic its events are in.
	for _, pp := range p.Pipelines {
		if r := pp.Results; r != nil {
			n := max(parts[r.EventsTopic], parts[r.StatusTopic])
			parts[r.EventsTopic], parts[r.StatusTopic] = n, n
		}
	}
	if t := p.Scheduler.Topic; len(p.Schedules()) > 0 && t != "" {
		parts[t], configs[t] = 1, ScheduleTopicConfig()
	}
	out := make([]Topic, 0, len(parts))
	for name, n := range parts {
		out = append(out, Topic{Name: name, Partitions: n, Config: configs[name]})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// ChangelogConfig is the topic config of a dedup changelog: compacted (one
// record per key) and, so that keys of a window long past do not pile up,
// records older than twice the window are deleted, in segments of at most
// one window.
func ChangelogConfig(window time.Duration) map[string]string {
	return map[string]string{
		"cleanup.policy": "compact,delete",
		"retention.ms":   millis(2 * window),
		"segment.ms":     millis(max(window, time.Hour)),
	}
}
