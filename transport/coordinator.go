package transport

import (
	"errors"

	"github.com/IBM/sarama"
)

// newConsumerGroup joins group as sarama.NewConsumerGroup does, but talks
// to the group coordinator (JoinGroup, SyncGroup, Heartbeat, OffsetCommit,
// OffsetFetch, LeaveGroup) over connections of their own, as Java's
// KafkaConsumer does (its coordinator node gets a separate connection id)
// and franz-go does (join and sync apart from fetches). A broker answers
// the requests of one connection one at a time, in order, and sarama sends
// a group's commits on the connection it fetches on when the coordinator
// leads the partitions too: every auto-commit (each second) then held that
// stage's next fetch for as long as the commit took, 8–10 ms on Kafka
// 4.1.1 (docs/notes.md, issue 19). closeAll closes both clients; call it
// after the group's Close.
func newConsumerGroup(brokers []string, group string, cfg *sarama.Config) (g sarama.ConsumerGroup, closeAll func() error, err error) {
	fetch, err := sarama.NewClient(brokers, cfg)
	if err != nil {
		return nil, nil, err
	}
	// The coordinator's client needs no topic's metadata (sarama's default
	// is every topic's, refreshed every MetadataRefresh).
	cc := *cfg
	cc.Metadata.Full = false
	coord, err := sarama.NewClient(brokers, &cc)
	if err != nil {
		fetch.Close()
		return nil, nil, err
	}
	c := coordinatorApart{Client: fetch, coord: coord}
	if g, err = sarama.NewConsumerGroupFromClient(group, c); err != nil {
		c.Close()
		return nil, nil, err
	}
	return g, c.Close, nil
}

// coordinatorApart is a client whose group coordinator is reached through
// a second client, so through other connections.
type coordinatorApart struct {
	sarama.Client
	coord sarama.Client
}

func (c coordinatorApart) Coordinator(group string) (*sarama.Broker, error) {
	return c.coord.Coordinator(group)
}

func (c coordinatorApart) RefreshCoordinator(group string) error {
	return c.coord.RefreshCoordinator(group)
}

func (c coordinatorApart) Close() error {
	return errors.Join(c.Client.Close(), c.coord.Close())
}
