package kafkaops

import (
	"context"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/millrace/millrace/internal/kfake"
)

// A record written while a scan runs, to a partition it has not read yet,
// is not scanned: `replay quarantine` sent a record, the stage quarantined
// it again (unkeyed, to another partition) and the same run sent it again,
// up to --max-replays times.
func TestScan_reads_up_to_the_ends_it_began_with(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, "q"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cfg := sarama.NewConfig()
	cfg.Producer.Return.Successes = true
	cfg.Producer.Partitioner = sarama.NewManualPartitioner
	client, err := sarama.NewClient(c.ListenAddrs(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	prod, err := sarama.NewSyncProducerFromClient(client)
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	send := func(p int32, v string) {
		t.Helper()
		if _, _, err := prod.SendMessage(&sarama.ProducerMessage{Topic: "q", Partition: p, Value: sarama.StringEncoder(v)}); err != nil {
			t.Fatal(err)
		}
	}
	send(0, "first")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var seen []string
	err = scan(ctx, client, "q", nil, func(r *Record) (bool, error) {
		seen = append(seen, string(r.Value))
		if len(seen) == 1 {
			send(1, "written during the scan")
		}
		return true, nil
	})
	if err != nil || len(seen) != 1 || seen[0] != "first" {
		t.Fatalf("scan saw %q (%v), want only the record there when it began", seen, err)
	}
}
