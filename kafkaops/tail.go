package kafkaops

import (
	"context"
	"fmt"
	"sync"

	"github.com/IBM/sarama"
)

// TailOptions says what [Tail] reads.
type TailOptions struct {
	Cluster
	// Topic is read from every partition it has when Tail starts.
	Topic string
	// FromBeginning starts each partition at its log start; otherwise at
	// its end, so that only records that arrive from then on are read.
	FromBeginning bool
	// Limit stops Tail after this many records; 0 is no limit.
	Limit int
	// StopAtEnd stops reading each partition at the end it had when Tail
	// started, as kcat -e does; otherwise Tail reads on until ctx ends.
	StopAtEnd bool
	// Record is called with each record, one call at a time; records of
	// one partition come in offset order, partitions interleave.
	Record func(*Record)
}

// Tail reads opts.Topic outside any consumer group (it never moves a
// stage's offsets) and hands each record to opts.Record. It returns nil
// when the limit or the ends are reached, or when ctx ends while it reads
// (an interrupted tail is not a failure); an error when the topic does not
// exist or reading fails.
func Tail(ctx context.Context, opts TailOptions) error {
	client, err := opts.Connect(ctx)
	if err != nil {
		return err
	}
	defer client.Close()
	parts, err := client.Partitions(opts.Topic)
	if err != nil {
		return topicError(opts.Topic, err)
	}
	consumer, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		return fmt.Errorf("open consumer: %w", err)
	}
	defer consumer.Close()
	t := &tail{opts: opts}
	readCtx, stop := context.WithCancel(ctx)
	defer stop()
	var wg sync.WaitGroup
	errs := make(chan error, len(parts))
	for _, p := range parts {
		first, end, err := logBounds(ctx, client, opts.Topic, p)
		if err != nil {
			return err
		}
		if !opts.FromBeginning {
			first = end
		}
		if !opts.StopAtEnd {
			end = NoEnd
		}
		wg.Go(func() {
			_, err := ReadRange(readCtx, consumer, opts.Topic, p, first, end, t.record)
			if err != nil && readCtx.Err() == nil {
				errs <- err
			}
			if err != nil || t.full() {
				stop()
			}
		})
	}
	wg.Wait()
	select {
	case err := <-errs:
		return fmt.Errorf("tail %s: %w", opts.Topic, err)
	default:
		return nil
	}
}

// tail counts the records handed out, for the limit.
type tail struct {
	opts TailOptions
	mu   sync.Mutex
	n    int
}

func (t *tail) record(m *Record) (bool, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.opts.Limit > 0 && t.n >= t.opts.Limit {
		return false, nil
	}
	t.n++
	t.opts.Record(m)
	return t.opts.Limit == 0 || t.n < t.opts.Limit, nil
}

func (t *tail) full() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.opts.Limit > 0 && t.n >= t.opts.Limit
}
