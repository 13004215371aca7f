package router

import (
	"context"
	"log/slog"
	"time"

	"github.com/IBM/sarama"

	"github.com/millrace/millrace/kafkaops"
	"github.com/millrace/millrace/pipeline"
	"github.com/millrace/millrace/transport"
)

// ExportLag connects to brokers and sets millrace_consumer_lag_records of
// m for every stage of plan every interval (default 5 s), until ctx ends:
// for a process that runs no stage (`millrace broker`). A connection that
// fails is retried; the error of the last attempt is logged.
func ExportLag(ctx context.Context, brokers []string, plan *pipeline.Plan, m *Metrics, interval time.Duration, log *slog.Logger) {
	if interval <= 0 {
		interval = 5 * time.Second
	}
	cfg, err := plan.SaramaConfig()
	if err != nil {
		log.Error("consumer lag: cannot make a Kafka client", "err", err)
		return
	}
	client, err := transport.Connect(ctx, brokers, cfg, nil)
	if err != nil {
		if ctx.Err() == nil {
			log.Error("consumer lag: cannot reach Kafka", "err", err)
		}
		return
	}
	defer client.Close()
	stages, _ := plan.Stages()
	exportLag(ctx, client, m, stages, interval, log)
}

// exportLag sets millrace_consumer_lag_records for stages (every stage of
// the plan, not only those this process runs: a stage no process runs has
// lag too) every interval, until ctx ends. A stage whose lag cannot be
// read keeps its last figures; the failure is logged at debug.
func exportLag(ctx context.Context, client sarama.Client, m *Metrics, stages []pipeline.StagePlan, interval time.Duration, log *slog.Logger) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		for _, sp := range stages {
			lag, err := kafkaops.GroupLag(ctx, client, sp.Group, append(stageInputs(sp), sp.RetryTopics...))
			if err != nil {
				log.Debug("cannot read consumer lag", "pipeline", sp.Pipeline, "stage", sp.Name, "err", err)
				continue
			}
			m.setLag(sp.Pipeline, sp.Name, lag)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
