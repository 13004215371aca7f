package pipeline

import (
	"fmt"
	"sort"
	"strings"
)

// Wire names: the topics and consumer groups millrace derives from
// pipeline and stage names. Validation checks them for collisions in
// names.go too, so that every name the engine and the commands use is
// checked in one place.

// GroupName is the consumer group of a stage.
func GroupName(pipeline, stage string) string {
	return "millrace." + pipeline + "." + stage
}

// QuarantineTopic is the topic a pipeline's failed records go to.
func QuarantineTopic(pipeline string) string { return pipeline + ".quarantine" }

// ReplayedTopic is the compacted topic `millrace replay quarantine` records
// the quarantined records it sent in, keyed by their partition/offset.
func ReplayedTopic(pipeline string) string { return QuarantineTopic(pipeline) + ".replayed" }

// RetryTopic is the topic of retry tier n (1-based) of a stage.
func RetryTopic(pipeline, stage string, n int) string {
	return fmt.Sprintf("%s.%s.retry.%d", pipeline, stage, n)
}

// DedupTopic is the compacted changelog topic of a stage's dedup keys.
func DedupTopic(pipeline, stage string) string { return pipeline + "." + stage + ".dedup" }

// JobsTopic is the topic the stages of a pipeline with results emit job
// events to, keyed by job id (docs/jobs.md).
func JobsTopic(pipeline string) string { return pipeline + ".jobs" }

// JobStatusTopic is the compacted topic of the finished status of a
// pipeline's jobs, keyed by job id.
func JobStatusTopic(pipeline string) string { return JobsTopic(pipeline) + ".status" }

// JobsGroup is the consumer group of a pipeline's job folder, which folds
// [JobsTopic]. It is the group a stage named "jobs" would have, so
// validation refuses such a stage in a pipeline with results.
func JobsGroup(pipeline string) string { return "millrace." + JobsTopic(pipeline) }

// ScheduleTopic is the one topic of every schedule of a file: a single
// partition, compacted (see [ScheduleTopicConfig]), keyed by schedule id,
// holding the last fire of each schedule. The schedulers also elect their
// leader on it: the member of [SchedulerGroup] that holds its partition.
// No other topic of the file may have its name.
const ScheduleTopic = "millrace.schedules"

// SchedulerGroup is the consumer group of the schedulers, on
// [ScheduleTopic]. No stage's group can be it: a stage's has two dots
// ([GroupName]), this one one.
const SchedulerGroup = "millrace.scheduler"

// stageTopic is the topic a stage after the first reads: its `topic:`, or
// [defaultStageTopic].
func stageTopic(pipeline string, st Stage) string {
	if st.Topic != "" {
		return st.Topic
	}
	return defaultStageTopic(pipeline, st.Name)
}

// defaultStageTopic is the topic a stage after the first reads when it
// sets no `topic:`.
func defaultStageTopic(pipeline, stage string) string { return pipeline + "." + stage }

// stageTopic is [stageTopic] as problems show it.
func (p *problems) stageTopic(pl *Pipeline, st *Stage) string {
	if st.Topic != "" {
		return p.shown(st.Of("topic"), st.Topic)
	}
	return defaultStageTopic(p.pipelineName(pl), p.stageName(st))
}

// maxTopicLength is the longest topic name Kafka accepts.
const maxTopicLength = 249

// topicUse is one use of a topic name in a file: what the topic is to
// millrace and where the name that makes it is written.
type topicUse struct {
	topic string
	shown string // topic as problems show it (see secrets.go)
	what  string // "the input of pipeline \"p\""
	at    Pos
	// derived is set for names millrace makes from pipeline and stage
	// names (a stage's `topic:` is written whole and checked as written);
	// shorten says which names to shorten when one is too long.
	derived bool
	shorten string
	replay  bool
	// schedules is set for [ScheduleTopic], which no name of the file
	// makes and no other use may share; at is where the schedules are.
	schedules bool
	// internal is set for topics that belong to a pipeline or stage: the
	// derived ones and a stage's own `topic:`.
	internal bool
	// reader is the pipeline whose input or priority topic this is (one
	// millrace only reads); jobsOf the pipeline whose job events or status
	// topic it is; reply is set for a reply topic.
	reader, jobsOf string
	reply          bool
}

// topicUses lists every topic the plan creates or reads (job events and
// status topics, reply topics and the schedule topic too), and the replay
// progress topics, in file order of the names that make them, the
// schedule topic first: no name in the file makes it, so a problem with
// it is told at the other name. Names that are already a problem (invalid
// or empty) are left out.
func (f *File) topicUses(p *problems) []topicUse {
	var uses []topicUse
	add := func(u topicUse) {
		if u.topic != "" {
			uses = append(uses, u)
		}
	}
	written := func(topic string, at Pos, format string, args ...any) topicUse {
		return topicUse{topic: topic, shown: p.shown(at, topic), what: fmt.Sprintf(format, args...), at: at}
	}
	for i := range f.Pipelines {
		pl := &f.Pipelines[i]
		name := p.pipelineName(pl)
		read := func(u topicUse) topicUse { u.reader = pl.Name; return u }
		add(read(written(pl.Input, pl.Of("input"), "the input of pipeline %q", name)))
		add(written(pl.Output, pl.Of("output"), "the output of pipeline %q", name))
		for j := range pl.Priority {
			pt := &pl.Priority[j]
			add(read(written(pt.Topic, pt.Of("topic"), "a priority topic of pipeline %q", name)))
		}
		if r := pl.Results; r != nil {
			for j, topic := range r.ReplyTopics {
				u := written(topic, r.Item("reply_topics", j), "a reply topic of pipeline %q", name)
				u.reply = true
				add(u)
			}
		}
		if !NamePattern.MatchString(pl.Name) {
			continue
		}
		pipelineDerived := func(topic, shown, what string) topicUse {
			return topicUse{topic: topic, shown: shown, what: fmt.Sprintf(what, name), at: pl.Of("name"),
				derived: true, internal: true, shorten: "pipeline"}
		}
		add(pipelineDerived(QuarantineTopic(pl.Name), QuarantineTopic(name), "the quarantine topic of pipeline %q"))
		replayed := pipelineDerived(ReplayedTopic(pl.Name), ReplayedTopic(name), "the replay progress topic of pipeline %q")
		replayed.replay = true
		add(replayed)
		if pl.Results != nil {
			events := pipelineDerived(JobsTopic(pl.Name), JobsTopic(name), "the job events topic of pipeline %q")
			status := pipelineDerived(JobStatusTopic(pl.Name), JobStatusTopic(name), "the job status topic of pipeline %q")
			events.jobsOf, status.jobsOf = pl.Name, pl.Name
			add(events)
			add(status)
		}
		for j := range pl.Stages {
			st := &pl.Stages[j]
			if !NamePattern.MatchString(st.Name) {
				continue
			}
			id, stage := p.stageID(pl, st), p.stageName(st)
			derived := func(topic, shown, what string) topicUse {
				return topicUse{topic: topic, shown: shown, what: what, at: st.Of("name"), derived: true, internal: true,
					shorten: "pipeline or stage"}
			}
			if j > 0 && st.Topic != "" {
				u := written(st.Topic, st.Of("topic"), "the topic stage %s reads", id)
				u.internal = true
				add(u)
			} else if j > 0 {
				add(derived(stageTopic(pl.Name, *st), p.stageTopic(pl, st), "the topic stage "+id+" reads"))
			}
			retry := f.policies(pl, st).retry
			for n := range retry.Tiers {
				add(derived(RetryTopic(pl.Name, st.Name, n+1), RetryTopic(name, stage, n+1),
					fmt.Sprintf("stage %s's retry tier %d topic", id, n+1)))
			}
			if st.Dedup != nil {
				add(derived(DedupTopic(pl.Name, st.Name), DedupTopic(name, stage), fmt.Sprintf("stage %s's dedup changelog", id)))
			}
		}
	}
	sort.SliceStable(uses, func(i, j int) bool { return uses[i].at.before(uses[j].at) })
	for i := range f.Pipelines {
		if pl := &f.Pipelines[i]; len(pl.Schedules) > 0 {
			topic := f.Scheduler.topic()
			u := topicUse{topic: topic, shown: topic, what: "the schedule topic", at: pl.Of("schedules"), schedules: true}
			uses = append([]topicUse{u}, uses...)
			break
		}
	}
	return uses
}

func (p Pos) before(q Pos) bool {
	return p.Line < q.Line || p.Line == q.Line && p.Column < q.Column
}

// validateWireNames reports topic names Kafka would refuse: a derived name
// longer than 249 characters, and two names that are equal once '.' reads
// as '_' (Kafka's Topic.hasCollision: such topics cannot both exist). Each
// colliding pair is reported once, at the later of the two; the same name
// used twice is no collision (other checks say which uses may share a
// topic), except that a replay progress topic is nobody else's.
func (f *File) validateWireNames(p *problems) {
	uses := f.topicUses(p)
	var at []Pos
	messages := map[Pos][]string{}
	report := func(u topicUse, msg string) {
		if messages[u.at] == nil {
			at = append(at, u.at)
		}
		messages[u.at] = append(messages[u.at], msg)
	}
	longest := map[Pos]topicUse{}
	for _, u := range uses {
		if l, ok := longest[u.at]; u.derived && len(u.topic) > maxTopicLength && (!ok || len(u.topic) > len(l.topic)) {
			longest[u.at] = u
		}
	}
	for _, u := range uses {
		if l, ok := longest[u.at]; ok && l == u {
			p.add(u.at, "%s would be %d characters long (Kafka allows %d): shorten the %s name",
				u.what, len(u.topic), maxTopicLength, u.shorten)
		}
	}
	byName := map[string]topicUse{}    // the first use of each name
	byUnified := map[string]topicUse{} // the first use of each name with '.' read as '_'
	for _, u := range uses {
		if first, ok := byName[u.topic]; ok {
			switch {
			case first.schedules:
				p.add(u.at, "topic %q (%s) is millrace's schedule topic, which the schedules of this file use (line %d): "+
					"pick another name", u.shown, u.what, first.at.Line)
			case first.replay != u.replay:
				p.add(u.at, "topic %q (%s) is also %s (line %d): rename one", u.shown, u.what, first.what, first.at.Line)
			}
			continue
		}
		byName[u.topic] = u
		unified := strings.ReplaceAll(u.topic, ".", "_")
		first, ok := byUnified[unified]
		if !ok {
			byUnified[unified] = u
			continue
		}
		if len(messages[u.at]) == 0 {
			report(u, fmt.Sprintf("topic %q (%s) collides with %q (%s, line %d): "+
				"Kafka refuses topic names that are equal once '.' reads as '_'; rename one",
				u.shown, u.what, first.shown, first.what, first.at.Line))
		} else {
			report(u, fmt.Sprintf("so does %q (%s) with %q (%s, line %d)", u.shown, u.what, first.shown, first.what, first.at.Line))
		}
	}
	for _, pos := range at {
		p.add(pos, "%s", strings.Join(messages[pos], "; "))
	}
}

// validateResultsNames checks the wire names of pipelines with results.
// The job folder's consumer group is no stage's. A job events or status
// topic is written by millrace alone: no stage reads it, no pipeline
// writes it, and its own pipeline does not read it (each record read would
// add to it); other pipelines may read it. A reply topic is none of the
// topics millrace derives or a stage reads. Each position gets one
// problem, saying what collides with what.
func (f *File) validateResultsNames(p *problems) {
	type folder struct {
		pipeline string
		line     int
	}
	folders := map[string]folder{}
	resultsLine := map[string]int{}
	for i := range f.Pipelines {
		pl := &f.Pipelines[i]
		if pl.Results != nil && NamePattern.MatchString(pl.Name) {
			folders[JobsGroup(pl.Name)] = folder{p.pipelineName(pl), pl.Of("results").Line}
			resultsLine[pl.Name] = pl.Of("results").Line
		}
	}
	if len(folders) == 0 {
		return
	}
	var at []Pos
	clauses := map[Pos][]string{}
	report := func(pos Pos, format string, args ...any) {
		if clauses[pos] == nil {
			at = append(at, pos)
		}
		clauses[pos] = append(clauses[pos], fmt.Sprintf(format, args...))
	}
	for i := range f.Pipelines {
		pl := &f.Pipelines[i]
		for j := range pl.Stages {
			st := &pl.Stages[j]
			if fo, ok := folders[GroupName(pl.Name, st.Name)]; ok && NamePattern.MatchString(st.Name) {
				report(st.Of("name"), "stage %s would share consumer group %q with the job folder of pipeline %q (results at line %d)",
					p.stageID(pl, st), GroupName(p.pipelineName(pl), p.stageName(st)), fo.pipeline, fo.line)
			}
		}
	}
	uses := f.topicUses(p)
	for _, j := range uses {
		if j.jobsOf == "" {
			continue
		}
		for _, u := range uses {
			if u.topic != j.topic || u == j || u.reader != "" && u.reader != j.jobsOf {
				continue
			}
			report(u.at, "topic %q (%s) is also %s (results at line %d)", u.shown, u.what, j.what, resultsLine[j.jobsOf])
		}
	}
	jobsTopics := map[string]bool{}
	for _, u := range uses {
		jobsTopics[u.topic] = jobsTopics[u.topic] || u.jobsOf != ""
	}
	for _, y := range uses {
		if !y.reply || jobsTopics[y.topic] { // said above
			continue
		}
		for _, u := range uses {
			if u.topic == y.topic && u.internal {
				report(y.at, "topic %q (%s) is also %s (line %d)", y.shown, y.what, u.what, u.at.Line)
				break
			}
		}
	}
	for _, pos := range at {
		p.add(pos, "%s: rename one", strings.Join(clauses[pos], "; "))
	}
}
