package transport_test

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/millrace/millrace/transport"
)

// handProducer is a sarama.AsyncProducer whose Input nobody reads until
// the test takes a record: a SendAsync that returns before the test took
// its record has held it back. take acks what it takes.
type handProducer struct {
	sarama.AsyncProducer // the methods a Publisher does not call
	in                   chan *sarama.ProducerMessage
	succ                 chan *sarama.ProducerMessage
	errs                 chan *sarama.ProducerError
	mu                   sync.Mutex
}

func newHandProducer() *handProducer {
	return &handProducer{in: make(chan *sarama.ProducerMessage), succ: make(chan *sarama.ProducerMessage, 16),
		errs: make(chan *sarama.ProducerError)}
}

func (f *handProducer) Input() chan<- *sarama.ProducerMessage     { return f.in }
func (f *handProducer) Successes() <-chan *sarama.ProducerMessage { return f.succ }
func (f *handProducer) Errors() <-chan *sarama.ProducerError      { return f.errs }
func (f *handProducer) AsyncClose()                               { f.mu.Lock(); close(f.succ); close(f.errs); f.mu.Unlock() }
func (f *handProducer) Close() error                              { f.AsyncClose(); return nil }

// take waits (up to 5 s) for the next record handed to the producer, acks
// it and returns its value.
func (f *handProducer) take(t *testing.T) string {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	select {
	case r := <-f.in:
		f.succ <- r
		b, _ := r.Value.Encode()
		return string(b)
	case <-time.After(5 * time.Second):
		t.Fatal("no record reached the producer in 5 s")
		return ""
	}
}

func rec(v string) []*sarama.ProducerMessage {
	return []*sarama.ProducerMessage{{Topic: "t", Value: sarama.StringEncoder(v)}}
}

func coalescing(t *testing.T, max int, wait time.Duration) (*transport.Publisher, *handProducer) {
	f := newHandProducer()
	p := transport.NewPublisherWith(f, sarama.NewConfig())
	p.Coalesce(max, wait, nil)
	t.Cleanup(func() {
		// A send blocked on Input (a failed test) must not block Close.
		stop := make(chan struct{})
		go func() {
			for {
				select {
				case <-f.in:
				case <-stop:
					return
				}
			}
		}()
		p.Close()
		close(stop)
	})
	return p, f
}

func sendAsync(t *testing.T, p *transport.Publisher, v string, acked chan<- string) {
	t.Helper()
	if err := p.SendAsync("t", rec(v), func(err error) {
		if err != nil {
			t.Errorf("%s: %v", v, err)
		}
		if acked != nil {
			acked <- v
		}
	}); err != nil {
		t.Error(err) // Error, not Fatal: it runs on goroutines of its own too
	}
}

// held sends v and fails the test unless SendAsync returns without the
// producer taking it (Input is not read: a record not held blocks).
func held(t *testing.T, p *transport.Publisher, v string, acked chan<- string) {
	t.Helper()
	ret := make(chan struct{})
	go func() { sendAsync(t, p, v, acked); close(ret) }()
	select {
	case <-ret:
	case <-time.After(5 * time.Second):
		t.Fatalf("SendAsync(%q) blocked on the producer: not held back", v)
	}
}

func TestCoalesce_holds_records_while_a_handler_is_busy_and_sends_them_in_order_at_its_end(t *testing.T) {
	p, f := coalescing(t, 10, time.Hour)
	p.Begin()
	p.Begin()
	for _, v := range []string{"a", "b", "c"} {
		held(t, p, v, nil)
	}
	p.End() // another handler is still busy: still held
	go p.End()
	for _, want := range []string{"a", "b", "c"} {
		if got := f.take(t); got != want {
			t.Fatalf("got %q, want %q (in the order sent)", got, want)
		}
	}
}

func TestCoalesce_sends_when_max_records_are_held(t *testing.T) {
	p, f := coalescing(t, 2, time.Hour)
	p.Begin()
	defer p.End()
	held(t, p, "a", nil)
	go sendAsync(t, p, "b", nil) // the second: hands both to the producer
	if got := f.take(t) + f.take(t); got != "ab" {
		t.Fatalf("got %q, want ab", got)
	}
}

func TestCoalesce_sends_after_the_wait_while_handlers_stay_busy(t *testing.T) {
	p, f := coalescing(t, 10, 20*time.Millisecond)
	p.Begin()
	defer p.End()
	acked := make(chan string, 1)
	held(t, p, "a", acked)
	if got := f.take(t); got != "a" { // no End, no max: the wait released it
		t.Fatalf("got %q, want a", got)
	}
	if v := <-acked; v != "a" {
		t.Fatalf("acked %q", v)
	}
}

func TestCoalesce_does_not_hold_when_no_handler_is_busy_nor_a_synchronous_send(t *testing.T) {
	p, f := coalescing(t, 10, time.Hour)
	go sendAsync(t, p, "idle", nil)
	if got := f.take(t); got != "idle" {
		t.Fatalf("got %q", got)
	}
	p.Begin()
	defer p.End()
	done := make(chan error, 1)
	go func() { done <- p.Send("t", rec("sync")) }()
	if got := f.take(t); got != "sync" {
		t.Fatalf("got %q", got)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestCoalesce_close_sends_what_is_held(t *testing.T) {
	f := newHandProducer()
	p := transport.NewPublisherWith(f, sarama.NewConfig())
	p.Coalesce(10, time.Hour, nil)
	p.Begin()
	acked := make(chan string, 1)
	held(t, p, "held", acked)
	closed := make(chan error, 1)
	go func() { closed <- p.Close() }()
	if got := f.take(t); got != "held" {
		t.Fatalf("got %q", got)
	}
	if v := <-acked; v != "held" {
		t.Fatalf("acked %q", v)
	}
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	if err := p.SendAsync("t", rec("late"), func(error) { t.Error("a send after Close was acked") }); err == nil {
		t.Fatal("SendAsync after Close: no error")
	}
}

func TestCoalesce_holds_while_more_records_are_coming_to_a_handler(t *testing.T) {
	f := newHandProducer()
	p := transport.NewPublisherWith(f, sarama.NewConfig())
	var coming atomic.Bool
	coming.Store(true)
	p.Coalesce(10, time.Hour, coming.Load)
	t.Cleanup(func() { go func() { <-f.in }(); p.Close() })
	held(t, p, "a", nil) // no handler busy, but a record is on its way
	p.Begin()
	p.End() // that record's handler ends, yet another is coming: still held
	coming.Store(false)
	p.Begin()
	go p.End() // the last one: nothing busy, nothing coming
	if got := f.take(t); got != "a" {
		t.Fatalf("got %q, want a", got)
	}
}
