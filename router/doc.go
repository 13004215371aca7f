// Package router runs the stages of a [pipeline.Plan]: each stage is a
// handler of a Watermill router reading its inputs in its own consumer
// group through the transport, with millrace's middleware around its
// filter (settle → metrics/status → quarantine → retry → dedupe, and
// timeout and recover around the filter call), and the stage state that
// middleware keeps (dedup keys, keys parked in retry tiers).
//
// It never parses YAML: it runs a plan. It talks to Kafka through
// transport and kafkaops.
package router
