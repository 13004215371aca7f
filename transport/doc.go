// Package transport is millrace's Kafka transport behind Watermill's
// interfaces: a consumer-group [Subscriber] that keeps a window of records
// in flight per partition (ordered per key, committed at the lowest
// unfinished offset) and hands each out as a [Delivery], the one handle a
// handler settles a record through; a [Publisher] on sarama's async,
// idempotent producer; the record format (watermill-kafka's, plus the
// key); Java's murmur2 partitioner; and the client configs millrace uses.
//
// It knows nothing of pipelines or stages. Stock Watermill users use the
// Subscriber without SettleFromContext and Ack/Nack as usual; it passes
// Watermill's conformance suite on the embedded broker and real Kafka.
package transport
