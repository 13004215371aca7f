package kafkaops

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/IBM/sarama"
)

// CopyOptions says which records [CopyRange] copies where.
type CopyOptions struct {
	Cluster
	// From is read; To, which must exist and differ from From, receives
	// the copies.
	From, To string
	// Since and Until, where not zero, bound the records' timestamps:
	// [Since, Until).
	Since, Until time.Time
	// Rate is how many records to copy per second at most; 0 is no limit.
	Rate float64
	// DryRun counts what would be copied and copies nothing.
	DryRun bool
	// Progress, if set, is called after each record read.
	Progress func(Progress)
}

// CopyResult counts what [CopyRange] did.
type CopyResult struct {
	// Copied is how many records were copied (in a dry run: would be),
	// acknowledged by the broker.
	Copied int
	// PerPartition counts them by their partition in From.
	PerPartition map[int32]int
	// SkippedAfterUntil is how many records read were stamped at or after
	// Until.
	SkippedAfterUntil int
}

// copyBatch is how many records go to the broker in one request.
const copyBatch = 500

// CopyRange copies the records of opts.From stamped in [Since, Until) into
// opts.To: same key, payload and headers, partitioned by key as millrace
// and Java clients partition (murmur2), with new timestamps (the time they
// are written). Each partition of From is read from its first record at or
// after Since (ListOffsets by time; its log start without Since) up to the
// end it had when the copy reached it; a record stamped in range but
// sitting before that offset (timestamps out of order) is not copied.
// Records go out in batches of 500 (one at a time under a Rate) and count
// as copied once acknowledged. The result is valid (counting what was
// done) also when an error stops the copy; an error that stops it before
// it began (it cannot connect, a topic is missing) wraps [ErrNotStarted].
func CopyRange(ctx context.Context, opts CopyOptions) (CopyResult, error) {
	c := &topicCopy{opts: opts, res: CopyResult{PerPartition: map[int32]int{}}}
	switch {
	case opts.From == opts.To:
		return c.res, notStarted(fmt.Errorf("copy %s into itself: it would grow for ever", opts.From))
	case !opts.Since.IsZero() && !opts.Until.IsZero() && !opts.Until.After(opts.Since):
		return c.res, notStarted(errors.New("copy: until must be after since"))
	}
	client, err := opts.Connect(ctx)
	if err != nil {
		return c.res, notStarted(err)
	}
	defer client.Close()
	for _, t := range []struct{ name, role string }{{opts.From, "to copy from"}, {opts.To, "to copy into"}} {
		if _, err := client.Partitions(t.name); errors.Is(err, sarama.ErrUnknownTopicOrPartition) {
			return c.res, notStarted(fmt.Errorf("the topic %s, %s, does not exist", t.role, t.name))
		} else if err != nil {
			return c.res, notStarted(topicError(t.name, err))
		}
	}
	if !opts.DryRun {
		if c.producer, err = opts.syncProducer(); err != nil {
			return c.res, notStarted(err)
		}
		defer c.producer.Close()
	}
	err = c.run(ctx, client)
	return c.res, err
}

type topicCopy struct {
	opts     CopyOptions
	producer sarama.SyncProducer
	batch    []*sarama.ProducerMessage
	res      CopyResult
}

func (c *topicCopy) run(ctx context.Context, client sarama.Client) error {
	start, err := c.startOffsets(ctx, client)
	if err != nil {
		return err
	}
	pace := newPacer(c.opts.Rate)
	defer pace.stop()
	var total int64
	if c.opts.Progress != nil {
		total = backlog(ctx, client, c.opts.From, start)
	}
	step := progressTo(c.opts.Progress, total)
	err = scan(ctx, client, c.opts.From, start, func(m *Record) (bool, error) {
		if !c.opts.Until.IsZero() && !m.Timestamp.Before(c.opts.Until) {
			c.res.SkippedAfterUntil++
			step(false)
			return true, nil
		}
		if !c.opts.Since.IsZero() && m.Timestamp.Before(c.opts.Since) {
			step(false)
			return true, nil // out of timestamp order, before the range
		}
		step(true)
		if c.opts.DryRun {
			c.res.Copied++
			c.res.PerPartition[m.Partition]++
			return true, nil
		}
		if err := pace.wait(ctx); err != nil {
			return false, err
		}
		out := &sarama.ProducerMessage{Topic: c.opts.To, Value: sarama.ByteEncoder(m.Value), Metadata: m.Partition}
		if m.Key != nil {
			out.Key = sarama.ByteEncoder(m.Key)
		}
		for _, h := range m.Headers {
			out.Headers = append(out.Headers, *h)
		}
		c.batch = append(c.batch, out)
		if len(c.batch) >= copyBatch || pace.paced() {
			return true, c.flush()
		}
		return true, nil
	})
	if err == nil && !c.opts.DryRun {
		err = c.flush()
	}
	return err
}

// startOffsets returns where each partition of From is read from: the
// first offset stamped at or after Since (its end where there is none);
// nil without Since (the log starts).
func (c *topicCopy) startOffsets(ctx context.Context, client sarama.Client) (map[int32]int64, error) {
	if c.opts.Since.IsZero() {
		return nil, nil
	}
	parts, err := client.Partitions(c.opts.From)
	if err != nil {
		return nil, topicError(c.opts.From, err)
	}
	start := map[int32]int64{}
	for _, p := range parts {
		o, err := GetOffset(ctx, client, c.opts.From, p, c.opts.Since.UnixMilli())
		if err != nil {
			return nil, fmt.Errorf("offset of %s/%d at %s: %w", c.opts.From, p, c.opts.Since.Format(time.RFC3339), err)
		}
		if o < 0 { // no record at or after Since
			if o, err = GetOffset(ctx, client, c.opts.From, p, sarama.OffsetNewest); err != nil {
				return nil, fmt.Errorf("end of %s/%d: %w", c.opts.From, p, err)
			}
		}
		start[p] = o
	}
	return start, nil
}

// flush sends the batch and counts what the broker acked as copied (all
// of it, or when the send fails all but the records it failed on).
func (c *topicCopy) flush() error {
	if len(c.batch) == 0 {
		return nil
	}
	err := c.producer.SendMessages(c.batch)
	for _, m := range acked(c.batch, err) {
		c.res.Copied++
		c.res.PerPartition[m.Metadata.(int32)]++
	}
	c.batch = c.batch[:0]
	if err != nil {
		return fmt.Errorf("copy to %s: %w", c.opts.To, err)
	}
	return nil
}

// acked returns the records of batch the broker acked, given what
// SyncProducer.SendMessages returned for it: all of them on success, none
// on an error that is not sarama.ProducerErrors (nothing was sent), else
// all but the records it lists.
func acked(batch []*sarama.ProducerMessage, err error) []*sarama.ProducerMessage {
	if err == nil {
		return batch
	}
	var perrs sarama.ProducerErrors
	if !errors.As(err, &perrs) {
		return nil
	}
	failed := make(map[*sarama.ProducerMessage]bool, len(perrs))
	for _, pe := range perrs {
		failed[pe.Msg] = true
	}
	var out []*sarama.ProducerMessage
	for _, m := range batch {
		if !failed[m] {
			out = append(out, m)
		}
	}
	return out
}
