package kafkaops

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/IBM/sarama"
)

// offsetResponse answers a ListOffsets (v2) for t/0 with offset or err.
func offsetResponse(offset int64, err sarama.KError) *sarama.OffsetResponse {
	r := &sarama.OffsetResponse{Version: 2}
	r.AddTopicPartition("t", 0, offset)
	r.Blocks["t"][0].Err = err
	return r
}

// A topic created a moment ago answers ListOffsets with NOT_LEADER for a
// while (seen on Kafka 4.1.1 right after CreateTopics: a dedup restore
// failed on it); sarama retries once, getOffset until it passes. An error
// that does not pass is returned at once.
func TestGetOffset_waits_for_a_new_partition_leader(t *testing.T) {
	b := sarama.NewMockBroker(t, 1)
	defer b.Close()
	notLeader := offsetResponse(-1, sarama.ErrNotLeaderForPartition)
	b.SetHandlerByMap(map[string]sarama.MockResponse{
		"ApiVersionsRequest": sarama.NewMockApiVersionsResponse(t).SetApiKeys([]sarama.ApiVersionsResponseKey{
			{ApiKey: 18, MinVersion: 0, MaxVersion: 3}, // ApiVersions
			{ApiKey: 3, MinVersion: 0, MaxVersion: 5},  // Metadata
			{ApiKey: 2, MinVersion: 0, MaxVersion: 2},  // ListOffsets
		}),
		"MetadataRequest": sarama.NewMockMetadataResponse(t).
			SetBroker(b.Addr(), b.BrokerID()).SetLeader("t", 0, b.BrokerID()),
		// sarama's GetOffset asks twice per call: 5 refusals take three calls.
		"OffsetRequest": sarama.NewMockSequence(notLeader, notLeader, notLeader, notLeader, notLeader,
			offsetResponse(42, sarama.ErrNoError), offsetResponse(-1, sarama.ErrTopicAuthorizationFailed)),
	})
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V1_0_0_0
	cfg.Metadata.Retry.Backoff = time.Millisecond
	cfg.Net.ReadTimeout = 2 * time.Second
	client, err := sarama.NewClient([]string{b.Addr()}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	off, err := GetOffset(ctx, client, "t", 0, sarama.OffsetNewest)
	if err != nil || off != 42 {
		t.Fatalf("GetOffset = %d, %v; want 42 after the leader settled", off, err)
	}
	start := time.Now()
	if _, err := GetOffset(ctx, client, "t", 0, sarama.OffsetNewest); !errors.Is(err, sarama.ErrTopicAuthorizationFailed) {
		t.Fatalf("GetOffset = %v; want the authorization error", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("an error that does not pass was retried for %s", d)
	}
}

// A connection to the leader closed under the client (sarama's
// ErrNotConnected) passes like a settling leader; an authorization
// failure does not.
func TestOffsetErrorPasses_a_closed_connection(t *testing.T) {
	for err, want := range map[error]bool{
		sarama.ErrNotConnected:                               true,
		errors.Join(errors.New("x"), sarama.ErrNotConnected): true,
		sarama.ErrNotLeaderForPartition:                      true,
		sarama.ErrTopicAuthorizationFailed:                   false,
	} {
		if got := offsetErrorPasses(err); got != want {
			t.Errorf("offsetErrorPasses(%v) = %v, want %v", err, got, want)
		}
	}
}
