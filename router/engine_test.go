package router

import (
	"log/slog"
	"testing"
	"time"

	"github.com/millrace/millrace/pipeline"
	"github.com/millrace/millrace/transport"
)

// A stage's group timeouts come from pipelines.yaml or the engine's config,
// and stay consistent: the rebalance timeout covers the drain (stop
// timeout + DrainGrace + margin) unless the stage sets it, and then the
// drain is cut to fit; the read timeout outlasts the rebalance timeout.
func TestEngine_group_timeouts_cover_the_drain(t *testing.T) {
	tests := []struct {
		name                       string
		stop, session, rebalance   time.Duration // engine stop timeout; the stage's YAML (0: unset)
		wantSession, wantRebalance time.Duration
		wantDrain                  time.Duration
	}{
		{"defaults", 30 * time.Second, 0, 0, 10 * time.Second, 60 * time.Second, 30 * time.Second},
		{"long stop", 2 * time.Minute, 0, 0, 10 * time.Second, 2*time.Minute + 10*time.Second, 2 * time.Minute},
		{"yaml session", 30 * time.Second, 45 * time.Second, 0, 45 * time.Second, 60 * time.Second, 30 * time.Second},
		{"yaml rebalance covers", 30 * time.Second, 0, 5 * time.Minute, 10 * time.Second, 5 * time.Minute, 30 * time.Second},
		{"yaml rebalance cuts the drain", 30 * time.Second, 0, 20 * time.Second, 10 * time.Second, 20 * time.Second, 10 * time.Second},
		{"drain never below 1s", 30 * time.Second, 0, 3 * time.Second, 10 * time.Second, 3 * time.Second, time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := &Engine{cfg: EngineConfig{StopTimeout: tt.stop, Sarama: transport.NewSaramaConfig("")}}
			c, drain := e.groupConfig(pipeline.StagePlan{SessionTimeout: tt.session, RebalanceTimeout: tt.rebalance},
				slog.New(slog.DiscardHandler))
			g := c.Consumer.Group
			if g.Session.Timeout != tt.wantSession || g.Heartbeat.Interval != tt.wantSession/3 ||
				g.Rebalance.Timeout != tt.wantRebalance || drain != tt.wantDrain {
				t.Errorf("session %s heartbeat %s rebalance %s drain %s; want %s %s %s %s", g.Session.Timeout, g.Heartbeat.Interval,
					g.Rebalance.Timeout, drain, tt.wantSession, tt.wantSession/3, tt.wantRebalance, tt.wantDrain)
			}
			if c.Net.ReadTimeout < g.Rebalance.Timeout+5*time.Second {
				t.Errorf("read timeout %s is shorter than the rebalance timeout %s + 5 s", c.Net.ReadTimeout, g.Rebalance.Timeout)
			}
			if e.cfg.Sarama.Consumer.Group.Rebalance.Timeout != transport.DefaultRebalanceTimeout {
				t.Error("groupConfig changed the engine's shared config")
			}
		})
	}
}
