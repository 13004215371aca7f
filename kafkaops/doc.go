// Package kafkaops is what operators and the command line do with Kafka,
// beside running stages: topic administration (creating a plan's topics,
// keeping a stage's own topics partitioned like its input), offsets with
// the retries a topic created a moment ago needs ([GetOffset]), consumer
// group offset resets with the semantics of Kafka's own
// kafka-consumer-groups tool ([ResetOffsets]), and one range reader
// ([ReadRange]) under everything that reads a topic: [Tail],
// [CountQuarantine] and [ShowQuarantine], [CopyRange], [ReplayQuarantine]
// and, the one writer, [Produce].
//
// Each operation of the command line is one function taking an options
// struct (with a [Cluster] saying how to reach Kafka): it opens its own
// clients with package transport's configs, and closes them before it
// returns. Records are handed out as [Record] values (sarama's), in
// offset order per partition.
package kafkaops
