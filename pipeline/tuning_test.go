package pipeline_test

import (
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/millrace/millrace/pipeline"
	"github.com/millrace/millrace/transport"
)

const tuningPipelines = `
pipelines:
  - name: p
    input: p.in
    stages:
      - {name: s, filter: log}
`

func TestBroker_tuning_reaches_the_client_configs(t *testing.T) {
	src := "version: 1\nbroker: {linger: 5ms, fetch_min_bytes: 65536, fetch_max_wait: 20ms, max_partition_fetch_bytes: 262144}\n" + tuningPipelines
	f, err := pipeline.Parse("x.yaml", []byte(src), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	pl := f.Plan()
	c, err := pl.SaramaConfig()
	if err != nil {
		t.Fatal(err)
	}
	if c.Consumer.Fetch.Min != 65536 || c.Consumer.MaxWaitTime != 20*time.Millisecond || c.Consumer.Fetch.Default != 262144 {
		t.Errorf("consumer config: fetch min %d, max wait %s, partition bytes %d", c.Consumer.Fetch.Min, c.Consumer.MaxWaitTime, c.Consumer.Fetch.Default)
	}
	pc, err := pl.ProducerConfig()
	if err != nil {
		t.Fatal(err)
	}
	if pc.Producer.Flush.Frequency != 5*time.Millisecond {
		t.Errorf("producer linger %s, want 5ms", pc.Producer.Flush.Frequency)
	}
	for _, c := range []*sarama.Config{c, pc} {
		if err := c.Validate(); err != nil {
			t.Errorf("sarama refuses the config: %v", err)
		}
	}

	// Without the keys, the defaults.
	f, err = pipeline.Parse("x.yaml", []byte("version: 1\n"+tuningPipelines), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if c, _ := f.Plan().SaramaConfig(); c.Consumer.Fetch.Min != 1 || c.Consumer.Fetch.Default != transport.DefaultMaxPartitionFetchBytes {
		t.Errorf("default fetch min %d, partition bytes %d", c.Consumer.Fetch.Min, c.Consumer.Fetch.Default)
	}
}

func TestBroker_tuning_out_of_range_is_a_problem_at_its_place(t *testing.T) {
	checkProblems(t, "version: 1\nbroker:\n  linger: -1s\n  fetch_min_bytes: 0\n  fetch_max_wait: 0s\n  max_partition_fetch_bytes: 12\n"+tuningPipelines, noEnv, []string{
		"3:11: linger must be between 0s (send at once) and 100ms, got -1s",
		"4:20: fetch_min_bytes must be between 1 and 1048576, got 0",
		"5:19: fetch_max_wait must be between 1ms and 1s (a stop or a rebalance waits for the fetch in flight), got 0s",
		"6:30: max_partition_fetch_bytes must be between 1024 and 67108864, got 12",
	})
	checkProblems(t, "version: 1\nbroker: {fetch_max_wait: 1500us}\n"+tuningPipelines, noEnv, []string{
		"2:26: fetch_max_wait must be whole milliseconds (Kafka's unit), got 1.5ms",
	})
}
