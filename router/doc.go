// Package router is everything millrace does with Kafka and Watermill: the
// transport (a consumer-group [Subscriber] and a [Publisher] on sarama,
// behind Watermill's interfaces), topic administration, the embedded broker
// and the [Engine] that runs the stages of a plan as handlers of a
// Watermill router.
//
// It never parses YAML: it runs a [pipeline.Plan].
package router
