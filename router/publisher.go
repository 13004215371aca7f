package router

import (
	"errors"
	"fmt"
	"sync"

	"github.com/IBM/sarama"
	"github.com/ThreeDotsLabs/watermill/message"
)

// Publisher is a Watermill [message.Publisher] on a sarama producer.
// Publish returns once the broker has acknowledged every message (with
// acks=all), so committing an input after Publish returns is safe.
type Publisher struct {
	producer sarama.SyncProducer
	once     sync.Once
	err      error
}

var _ message.Publisher = (*Publisher)(nil)

// NewPublisher opens a producer on client; closing the publisher does not
// close the client.
func NewPublisher(client sarama.Client) (*Publisher, error) {
	p, err := sarama.NewSyncProducerFromClient(client)
	if err != nil {
		return nil, fmt.Errorf("open producer: %w", err)
	}
	return &Publisher{producer: p}, nil
}

// Publish sends msgs to topic as one batch and waits for the broker's acks.
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
	if err := p.producer.SendMessages(records); err != nil {
		var perrs sarama.ProducerErrors
		if errors.As(err, &perrs) && len(perrs) > 0 {
			return fmt.Errorf("publish to %s: %d of %d records failed, first: %w", topic, len(perrs), len(records), perrs[0].Err)
		}
		return fmt.Errorf("publish to %s: %w", topic, err)
	}
	return nil
}

// Close flushes and closes the producer.
func (p *Publisher) Close() error {
	p.once.Do(func() { p.err = p.producer.Close() })
	return p.err
}
