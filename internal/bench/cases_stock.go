package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/IBM/sarama"
	"github.com/ThreeDotsLabs/watermill"
	wkafka "github.com/ThreeDotsLabs/watermill-kafka/v3/pkg/kafka"
	"github.com/ThreeDotsLabs/watermill/message"
)

// runStock is a stock watermill-kafka stage: its Subscriber (consumer group)
// and Publisher with their default sarama configs, except sarama Version
// V2_8_0_0 (kfake and Kafka 4 need it) and Consumer.Offsets.Initial =
// OffsetOldest (to read the backlog), under a Watermill router whose one
// handler republishes each message unchanged (a copy with the same UUID,
// metadata and payload) to out. Each config keeps sarama's default metrics
// registry (metrics.NewRegistry), which also counts the requests sent into
// the case's tally (countingRegistry).
func runStock(ctx context.Context, e *env, prefix, in, out string) error {
	defer tallies.Delete(prefix)
	logger := watermill.NopLogger{}
	subCfg := wkafka.DefaultSaramaSubscriberConfig()
	subCfg.Version = sarama.V2_8_0_0
	subCfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	subCfg.MetricRegistry = newCountingRegistry(tallyOf(prefix))
	sub, err := wkafka.NewSubscriber(wkafka.SubscriberConfig{
		Brokers: e.brokers, Unmarshaler: wkafka.DefaultMarshaler{},
		OverwriteSaramaConfig: subCfg, ConsumerGroup: prefix + ".group",
	}, logger)
	if err != nil {
		return fmt.Errorf("stock: new subscriber: %w", err)
	}
	pubCfg := wkafka.DefaultSaramaSyncPublisherConfig()
	pubCfg.Version = sarama.V2_8_0_0
	pubCfg.MetricRegistry = newCountingRegistry(tallyOf(prefix))
	pub, err := wkafka.NewPublisher(wkafka.PublisherConfig{
		Brokers: e.brokers, Marshaler: wkafka.DefaultMarshaler{}, OverwriteSaramaConfig: pubCfg,
	}, logger)
	if err != nil {
		return errors.Join(fmt.Errorf("stock: new publisher: %w", err), sub.Close())
	}
	r, err := message.NewRouter(message.RouterConfig{CloseTimeout: 15 * time.Second}, logger)
	if err != nil {
		return errors.Join(fmt.Errorf("stock: new router: %w", err), sub.Close(), pub.Close())
	}
	r.AddHandler("republish", in, sub, out, pub, func(m *message.Message) ([]*message.Message, error) {
		return []*message.Message{m.Copy()}, nil
	})
	// The router closes the handler's subscriber and publisher when it
	// stops; Close makes Run return.
	closed := make(chan error, 1)
	go func() {
		<-ctx.Done()
		closed <- r.Close()
	}()
	if err := r.Run(ctx); err != nil {
		if !r.IsClosed() {
			// Run failed on its own: close the router so the goroutine
			// above does not outlive this function.
			_ = r.Close()
		}
		return fmt.Errorf("stock: router: %w", err)
	}
	if err := <-closed; err != nil {
		return fmt.Errorf("stock: close router: %w", err)
	}
	return nil
}
