package pipeline

import (
	"fmt"
	"net"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/millrace/millrace/filters"
	"github.com/millrace/millrace/internal/namepattern"
)

// NamePattern is what pipeline, stage, priority and filter names must
// match.
var NamePattern = namepattern.Regexp

var topicPattern = regexp.MustCompile(`^[a-zA-Z0-9._-]{1,249}$`)

const maxPartitions, maxConcurrency, maxInFlight = 10000, 10000, 100000

func (f *File) validate(p *problems, reg *filters.Registry) {
	switch {
	case !f.Set("version"):
		p.add(f.Self, "missing key \"version\": set `version: 1`")
	case f.Version != 1:
		p.add(f.Of("version"), "unsupported version %s: this millrace reads version 1", p.shown(f.Of("version"), strconv.Itoa(f.Version)))
	}
	if f.Broker != nil {
		switch f.Broker.Compression {
		case "", "none", "gzip", "snappy", "lz4", "zstd":
		default:
			at := f.Broker.Of("compression")
			p.add(at, "compression %s: want none, gzip, snappy, lz4 or zstd", p.quoted(at, f.Broker.Compression))
		}
		for i, b := range f.Broker.Brokers {
			if !strings.Contains(b, ":") {
				at := f.Broker.Item("brokers", i)
				p.add(at, "broker %d (%s) needs host:port", i+1, p.quoted(at, b))
			}
		}
		f.Broker.validateSecurity(p)
		f.Broker.validateTuning(p)
	}
	if a := f.Admin; a != nil && a.Addr != "" && a.Addr != "off" {
		if _, port, err := net.SplitHostPort(a.Addr); err != nil || !validPort(port) {
			at := a.Of("addr")
			p.add(at, "admin addr %s: want host:port (port 0..65535) or off", p.quoted(at, a.Addr))
		}
	}
	d := f.Defaults
	checkRange(p, d.Positions, "partitions", d.Partitions, 1, maxPartitions)
	checkRange(p, d.Positions, "concurrency", d.Concurrency, 1, maxConcurrency)
	checkRange(p, d.Positions, "max_in_flight", d.MaxInFlight, 1, maxInFlight)
	if rf := d.ReplicationFactor; rf != -1 && (rf < 1 || rf > 32767) {
		at := d.Of("replication_factor")
		p.add(at, "replication_factor must be -1 (the broker's default) or at least 1, got %s", p.shown(at, strconv.Itoa(rf)))
	}
	validatePolicies(p, d.policyLevel())
	if len(f.Pipelines) == 0 {
		p.add(f.Of("pipelines"), "no pipelines: add at least one under `pipelines:`")
	}
	f.secrets(p)
	names := map[string]Pos{}
	for i := range f.Pipelines {
		pl := &f.Pipelines[i]
		if prev, dup := names[pl.Name]; dup && pl.Name != "" {
			p.add(pl.Of("name"), "duplicate pipeline name %s (first defined at line %d)", p.quoted(pl.Of("name"), pl.Name), prev.Line)
		} else {
			names[pl.Name] = pl.Of("name")
		}
		pl.validate(p, reg)
	}
	if f.API != nil {
		f.API.validate(p, names)
	}
	if f.Scheduler != nil {
		f.Scheduler.validate(p, f)
	}
	f.validateTopics(p)
	f.validateResultsNames(p)
	f.validateWireNames(p)
}

func (pl *Pipeline) validate(p *problems, reg *filters.Registry) {
	where := fmt.Sprintf("pipeline %q", p.pipelineName(pl))
	checkName(p, pl.Positions, "pipeline", pl.Name)
	checkTopic(p, pl.Positions, where, "input", pl.Input, true)
	checkTopic(p, pl.Positions, where, "output", pl.Output, false)
	if pl.Input != "" && pl.Input == pl.Output {
		p.add(pl.Of("output"), "%s: output is the same topic as input, records would loop forever", where)
	}
	if pl.Set("partitions") {
		checkRange(p, pl.Positions, "partitions", pl.Partitions, 1, maxPartitions)
	}
	pl.validatePriority(p, where)
	validatePolicies(p, pl.policyLevel())
	if pl.Results != nil {
		pl.Results.validate(p, where)
	}
	pl.validateSchedules(p, where)
	if len(pl.Stages) == 0 {
		p.add(pl.Of("stages"), "%s has no stages: add at least one under `stages:`", where)
	}
	names := map[string]Pos{}
	for i := range pl.Stages {
		st := &pl.Stages[i]
		if prev, dup := names[st.Name]; dup && st.Name != "" {
			p.add(st.Of("name"), "%s: duplicate stage name %q (first defined at line %d)", where, p.stageName(st), prev.Line)
		} else {
			names[st.Name] = st.Of("name")
		}
		st.validate(p, reg, pl, i)
	}
}

func (st *Stage) validate(p *problems, reg *filters.Registry, pl *Pipeline, index int) {
	where := fmt.Sprintf("pipeline %q stage %q", p.pipelineName(pl), p.stageName(st))
	checkName(p, st.Positions, "stage", st.Name)
	if st.Set("concurrency") {
		checkRange(p, st.Positions, "concurrency", st.Concurrency, 1, maxConcurrency)
	}
	if st.Set("max_in_flight") {
		checkRange(p, st.Positions, "max_in_flight", st.MaxInFlight, 1, maxInFlight)
	}
	if st.Topic != "" && index == 0 {
		p.add(st.Of("topic"), "%s: the first stage reads the pipeline's input; set `input:` on the pipeline instead of `topic:`", where)
	}
	checkTopic(p, st.Positions, where, "topic", st.Topic, false)
	validatePolicies(p, st.policyLevel())
	if st.Dedup != nil {
		st.Dedup.validate(p, where)
	}
	if st.Scale != nil {
		st.Scale.validate(p, where, pl.Partitions)
	}
	if st.Resources != nil {
		st.Resources.validate(p, where)
	}
	if st.Filter == "" {
		p.add(st.Of("filter"), "%s: missing key \"filter\" (one of: %s)", where, filterNames(reg))
		return
	}
	spec, ok := reg.Lookup(st.Filter)
	if !ok {
		p.add(st.Of("filter"), "%s: unknown filter %s (known filters: %s)", where, p.quoted(st.Of("filter"), st.Filter), filterNames(reg))
		return
	}
	// The filter's messages may quote values of its config.
	secrets := p.sourcesIn(st.Config)
	cfg, fieldPos, probs := spec.Parse(st.Config)
	sound := true // every problem is an extra key: New can check the rest
	for _, pr := range probs {
		at := Pos{pr.Line, pr.Column}
		if pr.Line == 0 {
			at = st.Of("filter")
		}
		p.add(at, "%s: %s", where, scrubbed(pr.Message, secrets))
		sound = sound && pr.Extra
	}
	if !sound {
		return
	}
	cfg.Pipeline, cfg.Stage, cfg.SecretEnv = pl.Name, st.Name, p.secretEnv
	flt, err := spec.New(cfg)
	if err != nil {
		at := st.Of("config")
		if field, ok := filters.ErrorField(err); ok {
			if fp, ok := fieldPos[field]; ok {
				at = Pos{fp.Line, fp.Column}
			}
		}
		p.add(at, "%s: filter %s: %s", where, p.quoted(st.Of("filter"), st.Filter), scrubbed(err.Error(), secrets))
		return
	}
	if c, ok := flt.(filters.Closer); ok {
		_ = c.Close()
	}
	if len(probs) > 0 {
		return
	}
	st.filterSpec, st.filterConfig = spec, cfg
}

// validateTopics checks that no two stages share a consumer group and that
// topics owned by one pipeline (between stages, quarantine, retry tiers,
// dedup changelogs) are used by nobody else. Names in its problems are
// shown as written (see secrets.go).
func (f *File) validateTopics(p *problems) {
	groups := map[string]string{}
	internal := map[string]string{}
	// public names the first user of each input, priority and output topic.
	public := map[string]string{}
	addPublic := func(topic, format, pipeline string) {
		if _, ok := public[topic]; !ok && topic != "" {
			public[topic] = fmt.Sprintf(format, pipeline)
		}
	}
	quarantine := map[string]string{}
	for i := range f.Pipelines {
		pl := &f.Pipelines[i]
		name := p.pipelineName(pl)
		addPublic(pl.Input, "the input of pipeline %q", name)
		addPublic(pl.Output, "the output of pipeline %q", name)
		for _, pt := range pl.Priority {
			addPublic(pt.Topic, "a priority topic of pipeline %q", name)
		}
		internal[QuarantineTopic(pl.Name)] = name + " (quarantine)"
		quarantine[QuarantineTopic(pl.Name)] = name
	}
	for i := range f.Pipelines {
		pl := &f.Pipelines[i]
		for j := range pl.Stages {
			st := &pl.Stages[j]
			id := p.stageID(pl, st)
			group := GroupName(pl.Name, st.Name)
			if other, dup := groups[group]; dup && other != id {
				p.add(st.Of("name"), "stage %s would share consumer group %q with stage %s: rename one",
					id, GroupName(p.pipelineName(pl), p.stageName(st)), other)
			}
			groups[group] = id
			if j == 0 {
				continue
			}
			topic, shown := stageTopic(pl.Name, *st), p.stageTopic(pl, st)
			if other, dup := internal[topic]; dup && other != id {
				p.add(st.Of("name"), "stage %s would read topic %q, which stage %s reads too: rename one or set `topic:`", id, shown, other)
			} else if user, ok := public[topic]; !dup && ok {
				p.add(st.Of("name"), "stage %s would read topic %q, which is also %s: rename one or set `topic:`", id, shown, user)
			}
			internal[topic] = id
		}
	}
	f.validateStageTopics(p, quarantine, internal, public)
	for i := range f.Pipelines {
		pl := &f.Pipelines[i]
		for j := range pl.Priority {
			pt := &pl.Priority[j]
			if owner, ok := quarantine[pt.Topic]; ok {
				p.add(pt.Of("topic"), "pipeline %q priority entry %d: topic %s is the quarantine topic of pipeline %q: pick another topic",
					p.pipelineName(pl), j+1, p.quoted(pt.Of("topic"), pt.Topic), owner)
			}
		}
	}
}

// validateStageTopics checks that the retry tier topics and dedup changelog
// of each stage are used by nobody else: quarantine maps quarantine topics
// to their pipelines, internal the topics between stages to the stages
// that read them, and public inputs, priority topics and outputs to what
// they are.
func (f *File) validateStageTopics(p *problems, quarantine, internal, public map[string]string) {
	owned := map[string]string{}
	check := func(at Pos, what, topic, shown string) bool {
		other, dup := owned[topic]
		if q, ok := quarantine[topic]; !dup && ok {
			other, dup = "the quarantine topic of pipeline "+q, true
		} else if stage, ok := internal[topic]; !dup && ok {
			other, dup = "the topic stage "+stage+" reads", true
		} else if user, ok := public[topic]; !dup && ok {
			other, dup = user, true
		}
		if dup {
			p.add(at, "%s %q is also %s: rename one", what, shown, other)
		}
		return !dup
	}
	for i := range f.Pipelines {
		pl := &f.Pipelines[i]
		for j := range pl.Stages {
			st := &pl.Stages[j]
			id := p.stageID(pl, st)
			pipeline, stage := p.pipelineName(pl), p.stageName(st)
			retry := f.policies(pl, st).retry
			for n := range retry.Tiers {
				topic := RetryTopic(pl.Name, st.Name, n+1)
				what := fmt.Sprintf("stage %s's retry tier %d topic", id, n+1)
				if !check(st.Of("retry"), what, topic, RetryTopic(pipeline, stage, n+1)) {
					break
				}
				owned[topic] = what
			}
			if st.Dedup != nil {
				topic := DedupTopic(pl.Name, st.Name)
				what := fmt.Sprintf("stage %s's dedup changelog", id)
				check(st.Of("dedup"), what, topic, DedupTopic(pipeline, stage))
				owned[topic] = what
			}
		}
	}
}

func checkName(p *problems, ps Positions, what, name string) {
	switch {
	case !ps.Set("name"):
		p.add(ps.Self, "%s: missing key \"name\"", what)
	case !NamePattern.MatchString(name):
		p.add(ps.Of("name"), "%s name %s must be lowercase letters and digits, separated by single '.', '_' or '-' (%s)",
			what, p.quoted(ps.Of("name"), name), NamePattern)
	}
}

func checkTopic(p *problems, ps Positions, where, key, topic string, required bool) {
	switch {
	case topic == "" && required:
		p.add(ps.Of(key), "%s: missing key %q", where, key)
	case topic == "" || validTopic(topic):
	default:
		p.add(ps.Of(key), "%s: %s %s is not a valid Kafka topic name (letters, digits, '.', '_', '-'; at most 249)",
			where, key, p.quoted(ps.Of(key), topic))
	}
}

func checkRange(p *problems, ps Positions, key string, v, lo, hi int) {
	if v < lo || v > hi {
		p.add(ps.Of(key), "%s must be between %d and %d, got %s", key, lo, hi, p.shown(ps.Of(key), strconv.Itoa(v)))
	}
}

func filterNames(reg *filters.Registry) string {
	var names []string
	for _, s := range reg.All() {
		names = append(names, s.Name)
	}
	sort.Strings(names)
	if len(names) == 0 {
		return "none registered"
	}
	return strings.Join(names, ", ")
}

// validPort reports whether s is a TCP port number, 0..65535.
func validPort(s string) bool {
	n, err := strconv.Atoi(s)
	return err == nil && n >= 0 && n <= 65535
}
