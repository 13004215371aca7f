package router

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/IBM/sarama"
	"github.com/ThreeDotsLabs/watermill/message"
)

// Publisher is a Watermill [message.Publisher] on sarama's async producer.
//
// Publish returns once the broker has acknowledged every message it was
// given (acks=all), so committing an input after Publish returns is safe.
// Concurrent callers share the producer, and so share batches: while one
// produce request is on the wire, the records of every caller queue up for
// the next. The producer is idempotent where the config says so (the
// default), so its retries do not duplicate records.
type Publisher struct {
	client   sarama.Client
	producer sarama.AsyncProducer
	mu       sync.RWMutex
	closed   bool
	done     sync.WaitGroup
	once     sync.Once
	err      error
}

var _ message.Publisher = (*Publisher)(nil)

// NewPublisher connects to brokers with cfg (nil: NewProducerConfig("")) and
// opens the producer.
func NewPublisher(brokers []string, cfg *sarama.Config) (*Publisher, error) {
	if cfg == nil {
		cfg = NewProducerConfig("")
	}
	client, err := sarama.NewClient(brokers, cfg)
	if err != nil {
		return nil, fmt.Errorf("open producer: %w", err)
	}
	producer, err := sarama.NewAsyncProducerFromClient(client)
	if err != nil {
		client.Close()
		return nil, fmt.Errorf("open producer: %w", err)
	}
	p := &Publisher{client: client, producer: producer}
	p.done.Add(2)
	go p.collectSuccesses()
	go p.collectErrors()
	return p, nil
}

// pending is one Publish call waiting for its acks. They are pooled: the
// call takes the one token sent on done once all are acked.
type pending struct {
	left atomic.Int32
	done chan struct{}
	mu   sync.Mutex
	err  error
	n    int
	// then, if set, is called instead of sending on done (sendAsync).
	then  func(error)
	topic string
	total int
}

var pendings = sync.Pool{New: func() any { return &pending{done: make(chan struct{}, 1)} }}

func (b *pending) finish(err error) {
	if err != nil {
		b.mu.Lock()
		if b.err == nil {
			b.err = err
		}
		b.n++
		b.mu.Unlock()
	}
	if b.left.Add(-1) != 0 {
		return
	}
	if b.then == nil {
		b.done <- struct{}{}
		return
	}
	then, err := b.then, b.failure()
	b.then = nil
	pendings.Put(b)
	then(err)
}

// failure is the error of a finished send, or nil.
func (b *pending) failure() error {
	if b.err == nil {
		return nil
	}
	return fmt.Errorf("publish to %s: %d of %d records failed, first: %w", b.topic, b.n, b.total, b.err)
}

// Publish sends msgs to topic and waits until the broker acked all of them.
func (p *Publisher) Publish(topic string, msgs ...*message.Message) error {
	if len(msgs) == 0 {
		return nil
	}
	records := make([]*sarama.ProducerMessage, len(msgs))
	for i, m := range msgs {
		r, err := Marshaler{}.Marshal(topic, m)
		if err != nil {
			return fmt.Errorf("publish to %s: %w", topic, err)
		}
		records[i] = r
	}
	return p.send(topic, records)
}

// send produces records and waits until the broker acked all of them.
func (p *Publisher) send(topic string, records []*sarama.ProducerMessage) error {
	if len(records) == 0 {
		return nil
	}
	b := p.start(topic, records, nil)
	if b == nil {
		return errClosed
	}
	<-b.done
	err := b.failure()
	pendings.Put(b)
	return err
}

// sendAsync produces records and returns; once the broker acked all of
// them, then is called with nil, or with the error of the first that
// failed. then runs on the producer's goroutine: it must not block. If the
// publisher is closed, sendAsync returns an error and then is not called.
func (p *Publisher) sendAsync(topic string, records []*sarama.ProducerMessage, then func(error)) error {
	if p.start(topic, records, then) == nil {
		return errClosed
	}
	return nil
}

var errClosed = errors.New("publish: publisher is closed")

// start hands records (at least one) to the producer; nil if it is closed.
func (p *Publisher) start(topic string, records []*sarama.ProducerMessage, then func(error)) *pending {
	b := pendings.Get().(*pending)
	b.err, b.n, b.then, b.topic, b.total = nil, 0, then, topic, len(records)
	b.left.Store(int32(len(records)))
	for _, r := range records {
		r.Metadata = b
	}
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed {
		b.then = nil
		pendings.Put(b)
		return nil
	}
	for _, r := range records {
		p.producer.Input() <- r
	}
	return b
}

func (p *Publisher) collectSuccesses() {
	defer p.done.Done()
	for m := range p.producer.Successes() {
		m.Metadata.(*pending).finish(nil)
	}
}

func (p *Publisher) collectErrors() {
	defer p.done.Done()
	for e := range p.producer.Errors() {
		e.Msg.Metadata.(*pending).finish(e.Err)
	}
}

// Close flushes what is queued, waits for its acks and closes the producer.
func (p *Publisher) Close() error {
	p.once.Do(func() {
		p.mu.Lock()
		p.closed = true
		p.mu.Unlock()
		p.producer.AsyncClose()
		p.done.Wait()
		p.err = p.client.Close()
	})
	return p.err
}
