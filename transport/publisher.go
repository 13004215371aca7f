package transport

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

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
	// maxRecordBytes is the producer's Producer.MaxMessageBytes: a record
	// over it is refused before anything is sent (0: no check).
	maxRecordBytes int
	// refreshing is set while the producer's metadata is being refreshed
	// after a record was pinned to a partition it did not know.
	refreshing atomic.Bool
	mu         sync.RWMutex
	closed     bool
	done       sync.WaitGroup
	once       sync.Once
	err        error

	// Coalescing (see Coalesce): records of SendAsync calls made while a
	// handler is busy wait in held, and go to the producer together.
	busy     atomic.Int64
	hmu      sync.Mutex // after mu
	held     []*sarama.ProducerMessage
	holdMax  int
	holdWait time.Duration
	coming   func() bool // more records are on their way to a handler
	timer    *time.Timer
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
	p := &Publisher{client: client, producer: producer, maxRecordBytes: cfg.Producer.MaxMessageBytes}
	p.done.Add(2)
	go p.collectSuccesses()
	go p.collectErrors()
	return p, nil
}

// NewPublisherWith returns a publisher on a producer the caller made (for
// example sarama's mocks.AsyncProducer in tests) with its config's
// Producer.MaxMessageBytes; Close closes the producer.
func NewPublisherWith(producer sarama.AsyncProducer, cfg *sarama.Config) *Publisher {
	p := &Publisher{producer: producer, maxRecordBytes: cfg.Producer.MaxMessageBytes}
	p.done.Add(2)
	go p.collectSuccesses()
	go p.collectErrors()
	return p
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
	return p.Send(topic, records)
}

// Send produces records and waits until the broker acked all of them.
func (p *Publisher) Send(topic string, records []*sarama.ProducerMessage) error {
	if len(records) == 0 {
		return nil
	}
	b, err := p.start(topic, records, nil)
	if err != nil {
		return err
	}
	<-b.done
	err = b.failure()
	pendings.Put(b)
	return err
}

// SendAsync produces records and returns; once the broker acked all of
// them, then is called with nil, or with the error of the first that
// failed. then runs on the producer's goroutine: it must not block. If the
// records cannot be sent (the publisher is closed, a record is too large),
// sendAsync returns the error and then is not called.
func (p *Publisher) SendAsync(topic string, records []*sarama.ProducerMessage, then func(error)) error {
	_, err := p.start(topic, records, then)
	return err
}

var errClosed = errors.New("publish: publisher is closed")

// Coalesce makes SendAsync hold records back while a record is being
// handled (between Begin and End) or coming reports more records on
// their way to a handler (nil: none are), so that the producer gets them
// together and sends fewer, larger produce requests. sarama sends what
// it has as soon as the request before is answered: with a fast broker a
// request carried 8–10 records on the embedded broker (make bench's jq
// stage), and the per-request work dominated the stage's CPU. Held
// records go to the producer when no record is being handled (End of the
// last), when max are held, or wait after the first was held, whichever
// comes first: a stage at rest adds no latency, a busy one at most wait.
// End releases them when no record is being handled and none is coming.
// Send (synchronous) never holds. Call before the first send; max <= 0 or
// wait <= 0 leaves coalescing off (the default).
func (p *Publisher) Coalesce(max int, wait time.Duration, coming func() bool) {
	if max <= 0 || wait <= 0 {
		return
	}
	if coming == nil {
		coming = func() bool { return false }
	}
	p.holdMax, p.holdWait, p.coming = max, wait, coming
	p.timer = time.AfterFunc(time.Hour, p.release)
	p.timer.Stop()
}

// Begin marks a record's handling begun: until its End, SendAsync may hold
// records back (see Coalesce). Begin and End do nothing on a nil
// Publisher.
func (p *Publisher) Begin() {
	if p != nil {
		p.busy.Add(1)
	}
}

// End marks a record's handling done; when no other is, the records held
// back go to the producer.
func (p *Publisher) End() {
	if p != nil && p.busy.Add(-1) <= 0 && p.holdMax > 0 && !p.coming() {
		p.release()
	}
}

// release hands the records held back to the producer, in the order they
// were sent.
func (p *Publisher) release() {
	p.mu.RLock()
	defer p.mu.RUnlock()
	p.hmu.Lock()
	defer p.hmu.Unlock()
	p.flushHeld()
}

// flushHeld hands the held records to the producer; hmu is held, and mu
// (so that Close cannot close the producer meanwhile).
func (p *Publisher) flushHeld() {
	if len(p.held) == 0 {
		return
	}
	p.timer.Stop()
	for i, r := range p.held {
		p.producer.Input() <- r
		p.held[i] = nil
	}
	p.held = p.held[:0]
}

// CheckSize returns a *RecordTooLargeError for the first of records over
// the producer's Producer.MaxMessageBytes (as sarama counts a record),
// else nil: what Send and SendAsync refuse before sending anything.
func (p *Publisher) CheckSize(topic string, records []*sarama.ProducerMessage) error {
	if p.maxRecordBytes <= 0 {
		return nil
	}
	for i, r := range records {
		if n := r.ByteSize(2); n > p.maxRecordBytes {
			return &RecordTooLargeError{Topic: topic, Index: i, Count: len(records), Size: n, Limit: p.maxRecordBytes}
		}
	}
	return nil
}

// start hands records (at least one) to the producer. It sends none of them
// when one is over the producer's size limit (a *RecordTooLargeError), or
// when the publisher is closed.
func (p *Publisher) start(topic string, records []*sarama.ProducerMessage, then func(error)) (*pending, error) {
	if err := p.CheckSize(topic, records); err != nil {
		return nil, err
	}
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
		return nil, errClosed
	}
	if then != nil && p.holdMax > 0 && (p.busy.Load() > 0 || p.coming()) {
		p.hmu.Lock()
		if len(p.held) == 0 {
			p.timer.Reset(p.holdWait)
		}
		p.held = append(p.held, records...)
		if len(p.held) >= p.holdMax {
			p.flushHeld()
		}
		p.hmu.Unlock()
		return b, nil
	}
	for _, r := range records {
		p.producer.Input() <- r
	}
	return b, nil
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
		if errors.Is(e.Err, errNoSuchPartition) && p.client != nil && p.refreshing.CompareAndSwap(false, true) {
			go func(topic string) {
				defer p.refreshing.Store(false)
				_ = p.client.RefreshMetadata(topic)
			}(e.Msg.Topic)
		}
		e.Msg.Metadata.(*pending).finish(e.Err)
	}
}

// Close flushes what is queued, waits for its acks and closes the producer.
func (p *Publisher) Close() error {
	p.once.Do(func() {
		p.mu.Lock()
		p.closed = true
		if p.holdMax > 0 {
			p.hmu.Lock()
			p.flushHeld()
			p.hmu.Unlock()
		}
		p.mu.Unlock()
		p.producer.AsyncClose()
		p.done.Wait()
		if p.client != nil {
			p.err = p.client.Close()
		}
	})
	return p.err
}

// RecordTooLargeError is a publish refused before anything was sent: record
// Index of Count is Size bytes (as sarama counts a record: key, value,
// headers and the record overhead), over the producer's
// Producer.MaxMessageBytes, Limit. Kafka refuses such a record too
// (MESSAGE_TOO_LARGE, against the broker's message.max.bytes or the topic's
// max.message.bytes).
type RecordTooLargeError struct {
	Topic        string
	Index, Count int
	Size, Limit  int
}

func (e *RecordTooLargeError) Error() string {
	what := "record"
	if e.Count > 1 {
		what = fmt.Sprintf("record %d of %d", e.Index+1, e.Count)
	}
	return fmt.Sprintf("publish to %s: %s is %d bytes, over the producer's limit of %d bytes (MESSAGE_TOO_LARGE)",
		e.Topic, what, e.Size, e.Limit)
}

// RecordFault reports whether a publish failed because of the records
// themselves, so that sending them again cannot help: a record over the
// size limits, or one the broker finds invalid or corrupt. Anything else (a
// broker outage, a leader election, a timeout) passes, and the records may
// be sent again. So does a record pinned to a partition the producer does
// not know: millrace pins records only to partitions it made sure exist
// (CoPartition), so the producer's metadata is behind, and it is refreshed.
func RecordFault(err error) bool {
	var tooLarge *RecordTooLargeError
	if errors.As(err, &tooLarge) {
		return true
	}
	var ce sarama.ConfigurationError
	if errors.As(err, &ce) && strings.HasPrefix(string(ce), "Attempt to produce message larger") {
		return true
	}
	var ke sarama.KError
	if errors.As(err, &ke) {
		switch ke {
		case sarama.ErrMessageSizeTooLarge, sarama.ErrMessageSetSizeTooLarge, sarama.ErrInvalidMessage,
			sarama.ErrInvalidRecord, sarama.ErrInvalidTimestamp:
			return true
		}
	}
	return false
}
