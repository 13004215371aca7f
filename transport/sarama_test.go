package transport_test

import (
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/millrace/millrace/transport"
)

func TestSetGroupTimeouts_sets_the_group_timeouts_together(t *testing.T) {
	for _, tc := range []struct {
		name                       string
		readTimeout                time.Duration
		session, rebalance         time.Duration
		wantHeartbeat, wantReadTmo time.Duration
	}{
		{"defaults", 30 * time.Second, 10 * time.Second, 60 * time.Second, 10 * time.Second / 3, 65 * time.Second},
		{"read timeout raised to rebalance + 5s", 30 * time.Second, 6 * time.Second, 3 * time.Minute, 2 * time.Second, 185 * time.Second},
		{"a longer read timeout is kept", 2 * time.Minute, 30 * time.Second, 10 * time.Second, 10 * time.Second, 2 * time.Minute},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := sarama.NewConfig()
			c.Net.ReadTimeout = tc.readTimeout
			transport.SetGroupTimeouts(c, tc.session, tc.rebalance)
			g := c.Consumer.Group
			if g.Session.Timeout != tc.session || g.Rebalance.Timeout != tc.rebalance {
				t.Errorf("session %s, rebalance %s; want %s, %s", g.Session.Timeout, g.Rebalance.Timeout, tc.session, tc.rebalance)
			}
			if g.Heartbeat.Interval != tc.wantHeartbeat {
				t.Errorf("heartbeat interval %s, want %s", g.Heartbeat.Interval, tc.wantHeartbeat)
			}
			if c.Net.ReadTimeout != tc.wantReadTmo {
				t.Errorf("read timeout %s, want %s", c.Net.ReadTimeout, tc.wantReadTmo)
			}
			if err := c.Validate(); err != nil {
				t.Errorf("sarama rejects the config: %v", err)
			}
		})
	}
}

// A consumer waits for a JoinGroup longer than the coordinator may hold it
// (the rebalance timeout); a producer joins no group and keeps the usual
// request timeout.
func TestNewSaramaConfig_waits_out_a_rebalance_timeout_for_a_join(t *testing.T) {
	c := transport.NewSaramaConfig("x")
	g := c.Consumer.Group
	if g.Session.Timeout != transport.DefaultSessionTimeout || g.Rebalance.Timeout != transport.DefaultRebalanceTimeout {
		t.Fatalf("session %s, rebalance %s; want the defaults", g.Session.Timeout, g.Rebalance.Timeout)
	}
	if c.Net.ReadTimeout <= g.Rebalance.Timeout {
		t.Fatalf("read timeout %s is not longer than the rebalance timeout %s", c.Net.ReadTimeout, g.Rebalance.Timeout)
	}
	if p := transport.NewProducerConfig("x"); p.Net.ReadTimeout != 30*time.Second {
		t.Fatalf("producer read timeout %s, want 30s", p.Net.ReadTimeout)
	}
}

// A process has a producer per stage: each keeps the metadata of the
// topics it produces to, as Java's producer does, not of every topic.
func TestNewProducerConfig_keeps_only_its_topics_metadata(t *testing.T) {
	if p := transport.NewProducerConfig("x"); p.Metadata.Full {
		t.Fatal("a producer keeps every topic's metadata: want only the topics it produces to")
	}
}
