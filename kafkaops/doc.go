// Package kafkaops is what operators and the command line do with Kafka,
// beside running stages: topic administration (creating a plan's topics,
// keeping a stage's own topics partitioned like its input), offsets with
// the retries a topic created a moment ago needs, consumer group offset
// resets with the semantics of Kafka's own kafka-consumer-groups tool, and
// reading a range of a partition.
package kafkaops
