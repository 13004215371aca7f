package kafkaops

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/IBM/sarama"

	"github.com/millrace/millrace/transport"
)

// Record is a record as the operations of this package read it: sarama's
// ConsumerMessage. Key is nil when the record has none and Value nil for a
// tombstone; Headers are in record order, a repeated name kept (KIP-82), a
// nil Value being a null header.
type Record = sarama.ConsumerMessage

// Header is a record header; a nil Value is a null one.
type Header = sarama.RecordHeader

// Cluster says how an operation reaches Kafka. Each operation opens its
// clients with the configs of package transport and closes them before it
// returns.
type Cluster struct {
	// Brokers are the bootstrap brokers, host:port.
	Brokers []string
	// ClientID is the Kafka client id; empty means "millrace".
	ClientID string
	// ConnectTimeout is how long to retry the brokers until they answer
	// (250 ms doubling to 5 s apart, see [transport.Connect]); 0 or less
	// retries until ctx ends, as `millrace run --connect-timeout 0` does.
	ConnectTimeout time.Duration
	// Security is how to reach brokers that encrypt or authenticate (nil:
	// PLAINTEXT).
	Security *transport.Security
}

// Config is the client config of the cluster's consuming and admin
// clients: [transport.NewSaramaConfig] of ClientID with Security applied.
func (c Cluster) Config() (*sarama.Config, error) {
	cfg := transport.NewSaramaConfig(c.ClientID)
	if err := c.Security.Apply(cfg); err != nil {
		return nil, err
	}
	return cfg, nil
}

// Connect opens a client for reading and admin requests, retrying the
// brokers for up to ConnectTimeout; the caller closes it.
func (c Cluster) Connect(ctx context.Context) (sarama.Client, error) {
	cfg, err := c.Config()
	if err != nil {
		return nil, err
	}
	if c.ConnectTimeout <= 0 {
		return transport.Connect(ctx, c.Brokers, cfg, nil)
	}
	return transport.ConnectTimeout(ctx, c.Brokers, cfg, c.ConnectTimeout)
}

// syncProducer opens a producer on a client of its own, as the stages'
// producers are configured (idempotent, acks from all in-sync replicas,
// murmur2 partitioning). A client of its own: on a client that also
// consumes, each send waits behind the consumer's long-polling fetch
// (100 records took 3 minutes).
func (c Cluster) syncProducer() (sarama.SyncProducer, error) {
	cfg := transport.NewProducerConfig(c.ClientID)
	if err := c.Security.Apply(cfg); err != nil {
		return nil, err
	}
	p, err := sarama.NewSyncProducer(c.Brokers, cfg)
	if err != nil {
		return nil, fmt.Errorf("open producer: %w", err)
	}
	return p, nil
}

// Progress is how far a long operation has come, for a progress bar.
type Progress struct {
	// Read is how many records were read, of Total (the offsets between
	// where the operation started reading and the ends of the partitions;
	// gaps of compacted topics make Read end below it).
	Read, Total int64
	// Sent is how many records were sent (or, in a dry run, would be).
	Sent int
}

// pacer spaces sends to a rate: one per tick.
type pacer struct{ tick *time.Ticker }

// newPacer returns a pacer for perSec records per second; 0 or less does
// not wait.
func newPacer(perSec float64) *pacer {
	if perSec <= 0 {
		return &pacer{}
	}
	return &pacer{tick: time.NewTicker(time.Duration(float64(time.Second) / perSec))}
}

// wait returns at the next tick, or ctx's error when it ends first.
func (p *pacer) wait(ctx context.Context) error {
	if p.tick == nil {
		return nil
	}
	select {
	case <-p.tick.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// paced reports whether the pacer waits between sends.
func (p *pacer) paced() bool { return p.tick != nil }

func (p *pacer) stop() {
	if p.tick != nil {
		p.tick.Stop()
	}
}

// ErrNotStarted is wrapped by the error of an operation that stopped
// before it read or sent anything (it could not connect, a topic is
// missing): its result counts nothing and is not worth reporting.
var ErrNotStarted = errors.New("operation not started")

// notStarted wraps err with ErrNotStarted, keeping its message.
func notStarted(err error) error {
	if err == nil {
		return nil
	}
	return notStartedError{err}
}

type notStartedError struct{ err error }

func (e notStartedError) Error() string   { return e.err.Error() }
func (e notStartedError) Unwrap() []error { return []error{e.err, ErrNotStarted} }
