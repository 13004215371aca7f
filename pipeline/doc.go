// Package pipeline owns pipelines.yaml: the model, strict loading (unknown
// keys are errors) that keeps line and column of every value, ${ENV}
// interpolation, defaults, validation that reports every problem at once as
// `file:line:col: message`, and the [Plan]: the stages, topics, consumer
// groups and partitions the engine runs, and the schedules the scheduler
// fires.
//
// It imports neither Kafka nor Watermill.
package pipeline
