package pipeline

import "fmt"

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
