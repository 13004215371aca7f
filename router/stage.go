package router

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"

	"github.com/millrace/millrace/filters"
	"github.com/millrace/millrace/pipeline"
)

// stage runs one filter as a Watermill handler.
type stage struct {
	plan   pipeline.StagePlan
	pub    message.Publisher
	filter filters.Filter
	sem    chan struct{}
	log    *slog.Logger
}

func newStage(plan pipeline.StagePlan, pub message.Publisher, log *slog.Logger) (*stage, error) {
	log = log.With("pipeline", plan.Pipeline, "stage", plan.Name)
	cfg := plan.Config
	cfg.Pipeline, cfg.Stage, cfg.Logger = plan.Pipeline, plan.Name, log
	f, err := plan.Filter.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("stage %s: build filter %q: %w", plan.ID(), plan.Filter.Name, err)
	}
	return &stage{plan: plan, pub: pub, filter: f, sem: make(chan struct{}, plan.Concurrency), log: log}, nil
}

// handle is the stage's Watermill handler: record in, filter, records out
// published to the stage's output topic. It returns once they are acked.
func (s *stage) handle(msg *message.Message) ([]*message.Message, error) {
	outs, err := s.process(msg)
	if err != nil || len(outs) == 0 {
		return nil, err
	}
	if err := s.pub.Publish(s.plan.Output, outs...); err != nil {
		return nil, fmt.Errorf("pipeline %q stage %q: %w", s.plan.Pipeline, s.plan.Name, err)
	}
	return nil, nil
}

// process runs the filter on one record, at most Concurrency at once.
func (s *stage) process(msg *message.Message) ([]*message.Message, error) {
	ctx := msg.Context()
	select {
	case s.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-s.sem }()

	in := toFilterMessage(msg)
	job := in.Headers[filters.HeaderJob]
	if job == "" {
		job = jobID(ctx)
		in.Headers[filters.HeaderJob] = job
	}
	outs, err := s.filter.Process(ctx, in)
	if err != nil {
		return nil, fmt.Errorf("pipeline %q stage %q: %w", s.plan.Pipeline, s.plan.Name, err)
	}
	if s.plan.Output == "" {
		return nil, nil
	}
	res := make([]*message.Message, 0, len(outs))
	for _, o := range outs {
		if o == nil {
			continue
		}
		res = append(res, s.toWatermill(o, job))
	}
	return res, nil
}

func toFilterMessage(msg *message.Message) *filters.Message {
	key, _ := MessageKey(msg)
	h := make(filters.Headers, len(msg.Metadata))
	for k, v := range msg.Metadata {
		if k != keyMetadata {
			h[k] = v
		}
	}
	return &filters.Message{Key: key, Payload: msg.Payload, Headers: h}
}

func (s *stage) toWatermill(o *filters.Message, job string) *message.Message {
	m := message.NewMessage(watermill.NewUUID(), o.Payload)
	m.Metadata = make(message.Metadata, len(o.Headers)+3)
	for k, v := range o.Headers {
		m.Metadata[k] = v
	}
	m.Metadata[filters.HeaderJob] = job
	m.Metadata[filters.HeaderStage] = s.plan.Name
	SetMessageKey(m, o.Key)
	return m
}

// jobID names a job that arrived without a millrace-job header after the
// record it came in, so a redelivered record gets the same id.
func jobID(ctx context.Context) string {
	r, ok := RecordFrom(ctx)
	if !ok {
		return uuid.NewString()
	}
	return uuid.NewSHA1(uuid.NameSpaceURL, []byte("kafka:"+r.String())).String()
}

func (s *stage) close() {
	if c, ok := s.filter.(filters.Closer); ok {
		if err := c.Close(); err != nil {
			s.log.Warn("closing filter", "err", err)
		}
	}
}
