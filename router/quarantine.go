package router

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/millrace/millrace/filters"
)

// quarantine returns a middleware that moves a record whose handler failed
// with a permanent error (see filters.Permanent) to the quarantine topic,
// unchanged (same key and payload, original headers) plus headers saying
// why, and then acks it so that the stage goes on. Any other error is
// returned, so the record is retried. A cancelled context (shutdown) is
// never a failure.
func quarantine(pub message.Publisher, topic, stage string, log *slog.Logger) message.HandlerMiddleware {
	return func(h message.HandlerFunc) message.HandlerFunc {
		return func(msg *message.Message) ([]*message.Message, error) {
			out, err := h(msg)
			if err == nil || !filters.IsPermanent(err) || errors.Is(err, context.Canceled) {
				return out, err
			}
			q := quarantined(msg, err, stage)
			if perr := pub.Publish(topic, q); perr != nil {
				log.Error("cannot quarantine record; it will be retried", "err", perr, "record_err", err)
				return nil, err
			}
			log.Warn("record quarantined", "topic", topic, "origin", q.Metadata[filters.HeaderOrigin], "err", err)
			return nil, nil
		}
	}
}

func quarantined(msg *message.Message, err error, stage string) *message.Message {
	q := message.NewMessage(watermill.NewUUID(), msg.Payload)
	q.Metadata = make(message.Metadata, len(msg.Metadata)+6)
	for k, v := range msg.Metadata {
		q.Metadata[k] = v
	}
	now := time.Now().UTC().Format(time.RFC3339Nano)
	attempt := 1
	if n, convErr := strconv.Atoi(msg.Metadata[filters.HeaderAttempt]); convErr == nil && n > 0 {
		attempt = n
	}
	q.Metadata[filters.HeaderError] = err.Error()
	q.Metadata[filters.HeaderStage] = stage
	q.Metadata[filters.HeaderAttempt] = strconv.Itoa(attempt)
	if r, ok := RecordFrom(msg.Context()); ok {
		q.Metadata[filters.HeaderOrigin] = r.String()
	}
	if q.Metadata[filters.HeaderFirstFailure] == "" {
		q.Metadata[filters.HeaderFirstFailure] = now
	}
	q.Metadata[filters.HeaderLastFailure] = now
	if q.Metadata[filters.HeaderJob] == "" {
		q.Metadata[filters.HeaderJob] = jobID(msg.Context())
	}
	return q
}
