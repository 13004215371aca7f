package pipeline

import (
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/millrace/millrace/filters"
)

// NamePattern is what pipeline and stage names must match.
var NamePattern = regexp.MustCompile(`^[a-z0-9]+([._-][a-z0-9]+)*$`)

var topicPattern = regexp.MustCompile(`^[a-zA-Z0-9._-]{1,249}$`)

const maxPartitions, maxConcurrency, maxInFlight = 10000, 10000, 100000

func (f *File) validate(p *problems) {
	switch {
	case !f.Set("version"):
		p.add(f.Self, "missing key \"version\": set `version: 1`")
	case f.Version != 1:
		p.add(f.Of("version"), "unsupported version %d: this millrace reads version 1", f.Version)
	}
	if f.Broker != nil {
		switch f.Broker.Compression {
		case "", "none", "gzip", "snappy", "lz4", "zstd":
		default:
			p.add(f.Broker.Of("compression"), "compression %q: want none, gzip, snappy, lz4 or zstd", f.Broker.Compression)
		}
		for i, b := range f.Broker.Brokers {
			if !strings.Contains(b, ":") {
				p.add(f.Broker.Of("brokers"), "broker %d (%q) needs host:port", i+1, b)
			}
		}
	}
	d := f.Defaults
	checkRange(p, d.Positions, "partitions", d.Partitions, 1, maxPartitions)
	checkRange(p, d.Positions, "concurrency", d.Concurrency, 1, maxConcurrency)
	checkRange(p, d.Positions, "max_in_flight", d.MaxInFlight, 1, maxInFlight)
	if rf := d.ReplicationFactor; rf != -1 && (rf < 1 || rf > 32767) {
		p.add(d.Of("replication_factor"), "replication_factor must be -1 (the broker's default) or at least 1, got %d", rf)
	}
	if len(f.Pipelines) == 0 {
		p.add(f.Of("pipelines"), "no pipelines: add at least one under `pipelines:`")
	}
	names := map[string]Pos{}
	for i := range f.Pipelines {
		pl := &f.Pipelines[i]
		if prev, dup := names[pl.Name]; dup && pl.Name != "" {
			p.add(pl.Of("name"), "duplicate pipeline name %q (first defined at line %d)", pl.Name, prev.Line)
		} else {
			names[pl.Name] = pl.Of("name")
		}
		pl.validate(p)
	}
	f.validateTopics(p)
}

func (pl *Pipeline) validate(p *problems) {
	where := fmt.Sprintf("pipeline %q", pl.Name)
	checkName(p, pl.Positions, "pipeline", pl.Name)
	checkTopic(p, pl.Positions, where, "input", pl.Input, true)
	checkTopic(p, pl.Positions, where, "output", pl.Output, false)
	if pl.Input != "" && pl.Input == pl.Output {
		p.add(pl.Of("output"), "%s: output is the same topic as input, records would loop forever", where)
	}
	if pl.Set("partitions") {
		checkRange(p, pl.Positions, "partitions", pl.Partitions, 1, maxPartitions)
	}
	if len(pl.Stages) == 0 {
		p.add(pl.Of("stages"), "%s has no stages: add at least one under `stages:`", where)
	}
	names := map[string]Pos{}
	for i := range pl.Stages {
		st := &pl.Stages[i]
		if prev, dup := names[st.Name]; dup && st.Name != "" {
			p.add(st.Of("name"), "%s: duplicate stage name %q (first defined at line %d)", where, st.Name, prev.Line)
		} else {
			names[st.Name] = st.Of("name")
		}
		st.validate(p, pl.Name, i)
	}
}

func (st *Stage) validate(p *problems, pipeline string, index int) {
	where := fmt.Sprintf("pipeline %q stage %q", pipeline, st.Name)
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
	if st.Filter == "" {
		p.add(st.Of("filter"), "%s: missing key \"filter\" (one of: %s)", where, filterNames())
		return
	}
	spec, ok := filters.Lookup(st.Filter)
	if !ok {
		p.add(st.Of("filter"), "%s: unknown filter %q (known filters: %s)", where, st.Filter, filterNames())
		return
	}
	cfg, fieldPos, probs := spec.Parse(st.Config)
	for _, pr := range probs {
		at := Pos{pr.Line, pr.Column}
		if pr.Line == 0 {
			at = st.Of("filter")
		}
		p.add(at, "%s: %s", where, pr.Message)
	}
	if len(probs) > 0 {
		return
	}
	cfg.Pipeline, cfg.Stage = pipeline, st.Name
	flt, err := spec.New(cfg)
	if err != nil {
		at := st.Of("config")
		if field, ok := filters.ErrorField(err); ok {
			if fp, ok := fieldPos[field]; ok {
				at = Pos{fp.Line, fp.Column}
			}
		}
		p.add(at, "%s: filter %q: %v", where, st.Filter, err)
		return
	}
	if c, ok := flt.(filters.Closer); ok {
		_ = c.Close()
	}
	st.filterConfig = cfg
}

// validateTopics checks that no two stages share a consumer group and that
// topics between stages (owned by one pipeline) are used by nobody else.
func (f *File) validateTopics(p *problems) {
	groups := map[string]string{}
	internal := map[string]string{}
	public := map[string]bool{}
	for _, pl := range f.Pipelines {
		public[pl.Input] = true
		public[pl.Output] = true
		internal[QuarantineTopic(pl.Name)] = pl.Name + " (quarantine)"
	}
	for _, pl := range f.Pipelines {
		for i, st := range pl.Stages {
			id := pl.Name + "/" + st.Name
			group := GroupName(pl.Name, st.Name)
			if other, dup := groups[group]; dup && other != id {
				p.add(st.Of("name"), "stage %s would share consumer group %q with stage %s: rename one", id, group, other)
			}
			groups[group] = id
			if i == 0 {
				continue
			}
			topic := stageTopic(pl.Name, st)
			if other, dup := internal[topic]; dup && other != id {
				p.add(st.Of("name"), "stage %s would read topic %q, which stage %s reads too: rename one or set `topic:`", id, topic, other)
			} else if !dup && public[topic] {
				p.add(st.Of("name"), "stage %s would read topic %q, which is also a pipeline's input or output: rename one or set `topic:`", id, topic)
			}
			internal[topic] = id
		}
	}
}

func stageTopic(pipeline string, st Stage) string {
	if st.Topic != "" {
		return st.Topic
	}
	return pipeline + "." + st.Name
}

func checkName(p *problems, ps Positions, what, name string) {
	switch {
	case !ps.Set("name"):
		p.add(ps.Self, "%s: missing key \"name\"", what)
	case !NamePattern.MatchString(name):
		p.add(ps.Of("name"), "%s name %q must be lowercase letters and digits, separated by single '.', '_' or '-' (%s)", what, name, NamePattern)
	}
}

func checkTopic(p *problems, ps Positions, where, key, topic string, required bool) {
	switch {
	case topic == "" && required:
		p.add(ps.Of(key), "%s: missing key %q", where, key)
	case topic == "" || topicPattern.MatchString(topic) && topic != "." && topic != "..":
	default:
		p.add(ps.Of(key), "%s: %s %q is not a valid Kafka topic name (letters, digits, '.', '_', '-'; at most 249)", where, key, topic)
	}
}

func checkRange(p *problems, ps Positions, key string, v, lo, hi int) {
	if v < lo || v > hi {
		p.add(ps.Of(key), "%s must be between %d and %d, got %d", key, lo, hi, v)
	}
}

func filterNames() string {
	var names []string
	for _, s := range filters.All() {
		names = append(names, s.Name)
	}
	sort.Strings(names)
	if len(names) == 0 {
		return "none registered"
	}
	return strings.Join(names, ", ")
}
