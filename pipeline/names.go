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

// stageTopic is the topic a stage after the first reads: its `topic:`, or
// `<pipeline>.<stage>`.
func stageTopic(pipeline string, st Stage) string {
	if st.Topic != "" {
		return st.Topic
	}
	return pipeline + "." + st.Name
}

// maxTopicLength is the longest topic name Kafka accepts.
const maxTopicLength = 249

// topicUse is one use of a topic name in a file: what the topic is to
// millrace and where the name that makes it is written.
type topicUse struct {
	topic string
	what  string // "the input of pipeline \"p\""
	at    Pos
	// derived is set for names millrace makes from pipeline and stage
	// names (a stage's `topic:` is written whole and checked as written);
	// shorten says which names to shorten when one is too long.
	derived bool
	shorten string
	replay  bool
}

// topicUses lists every topic the plan creates or reads, and the replay
// progress topics, in file order of the names that make them. Names that
// are already a problem (invalid or empty) are left out.
func (f *File) topicUses() []topicUse {
	var uses []topicUse
	add := func(u topicUse) {
		if u.topic != "" {
			uses = append(uses, u)
		}
	}
	for i := range f.Pipelines {
		pl := &f.Pipelines[i]
		okName := NamePattern.MatchString(pl.Name)
		add(topicUse{topic: pl.Input, what: fmt.Sprintf("the input of pipeline %q", pl.Name), at: pl.Of("input")})
		add(topicUse{topic: pl.Output, what: fmt.Sprintf("the output of pipeline %q", pl.Name), at: pl.Of("output")})
		for j := range pl.Priority {
			pt := &pl.Priority[j]
			add(topicUse{topic: pt.Topic, what: fmt.Sprintf("a priority topic of pipeline %q", pl.Name), at: pt.Of("topic")})
		}
		if !okName {
			continue
		}
		add(topicUse{topic: QuarantineTopic(pl.Name), what: fmt.Sprintf("the quarantine topic of pipeline %q", pl.Name),
			at: pl.Of("name"), derived: true, shorten: "pipeline"})
		add(topicUse{topic: ReplayedTopic(pl.Name), what: fmt.Sprintf("the replay progress topic of pipeline %q", pl.Name),
			at: pl.Of("name"), derived: true, shorten: "pipeline", replay: true})
		for j := range pl.Stages {
			st := &pl.Stages[j]
			if !NamePattern.MatchString(st.Name) {
				continue
			}
			id := pl.Name + "/" + st.Name
			derived := func(topic, what string) topicUse {
				return topicUse{topic: topic, what: what, at: st.Of("name"), derived: true, shorten: "pipeline or stage"}
			}
			if j > 0 {
				u := derived(stageTopic(pl.Name, *st), "the topic stage "+id+" reads")
				if st.Topic != "" {
					u.at, u.derived = st.Of("topic"), false
				}
				add(u)
			}
			retry, _, _ := f.policies(pl, st)
			for n := range retry.Tiers {
				add(derived(RetryTopic(pl.Name, st.Name, n+1), fmt.Sprintf("stage %s's retry tier %d topic", id, n+1)))
			}
			if st.Dedup != nil {
				add(derived(DedupTopic(pl.Name, st.Name), fmt.Sprintf("stage %s's dedup changelog", id)))
			}
		}
	}
	sort.SliceStable(uses, func(i, j int) bool { return uses[i].at.before(uses[j].at) })
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
	uses := f.topicUses()
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
			if first.replay != u.replay {
				p.add(u.at, "topic %q (%s) is also %s (line %d): rename one", u.topic, u.what, first.what, first.at.Line)
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
				u.topic, u.what, first.topic, first.what, first.at.Line))
		} else {
			report(u, fmt.Sprintf("so does %q (%s) with %q (%s, line %d)", u.topic, u.what, first.topic, first.what, first.at.Line))
		}
	}
	for _, pos := range at {
		p.add(pos, "%s", strings.Join(messages[pos], "; "))
	}
}
