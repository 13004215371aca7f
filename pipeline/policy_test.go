package pipeline_test

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/millrace/millrace/pipeline"
)

func plan(t *testing.T, path string) *pipeline.Plan {
	t.Helper()
	f, err := load(t, path, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	return f.Plan()
}

func stage(t *testing.T, p *pipeline.Plan, id string) pipeline.StagePlan {
	t.Helper()
	ss, err := p.Stages(id)
	if err != nil || len(ss) != 1 {
		t.Fatalf("stage %s: %v", id, err)
	}
	return ss[0]
}

func TestPlan_policies_come_from_the_nearest_level_and_a_retry_block_applies_whole(t *testing.T) {
	p := plan(t, "testdata/policies.good.yaml")
	fromDefaults := pipeline.RetryPlan{Attempts: 7, Backoff: pipeline.BackoffPlan{
		Initial: 100 * time.Millisecond, Max: 10 * time.Second, Multiplier: 3, Jitter: 0.1}}
	builtin := pipeline.BackoffPlan{Initial: pipeline.DefaultBackoffInitial, Max: pipeline.DefaultBackoffMax,
		Multiplier: pipeline.DefaultBackoffMultiplier, Jitter: pipeline.DefaultBackoffJitter}
	tests := []struct {
		stage    string
		retry    pipeline.RetryPlan
		ordering pipeline.Ordering
		timeout  time.Duration
	}{
		// The stage's own block: unset backoff is built in, not the defaults'.
		{"orders/price", pipeline.RetryPlan{Attempts: 3, Backoff: builtin, Tiers: []time.Duration{time.Second}},
			pipeline.OrderByKey, 5 * time.Second},
		// The pipeline's block: tiers set, so one attempt per pass.
		{"orders/confirm", pipeline.RetryPlan{Attempts: pipeline.DefaultAttemptsWithTiers, Backoff: builtin,
			Tiers: []time.Duration{5 * time.Second, time.Minute, 10 * time.Minute}}, pipeline.OrderNone, 30 * time.Second},
		// `retry: {}` is a block: all built in, hiding pipeline and defaults.
		{"orders/ship", pipeline.RetryPlan{Attempts: pipeline.DefaultAttempts, Backoff: builtin}, pipeline.OrderNone, 0},
		// A stage block with only backoff.max: attempts built in, not 7.
		{"plain/only", pipeline.RetryPlan{Attempts: pipeline.DefaultAttempts, Backoff: pipeline.BackoffPlan{
			Initial: pipeline.DefaultBackoffInitial, Max: time.Second, Multiplier: pipeline.DefaultBackoffMultiplier,
			Jitter: pipeline.DefaultBackoffJitter}}, pipeline.OrderByKey, 45 * time.Second},
		// `retry:` and `timeout:` with no value count as absent.
		{"bare/only", fromDefaults, pipeline.OrderByKey, 45 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.stage, func(t *testing.T) {
			s := stage(t, p, tt.stage)
			if !reflect.DeepEqual(s.Retry, tt.retry) {
				t.Errorf("retry\n got  %+v\n want %+v", s.Retry, tt.retry)
			}
			if s.Ordering != tt.ordering || s.Timeout != tt.timeout {
				t.Errorf("ordering %q timeout %s, want %q %s", s.Ordering, s.Timeout, tt.ordering, tt.timeout)
			}
		})
	}
}

func TestPlan_without_policies_uses_the_built_in_defaults(t *testing.T) {
	s := stage(t, plan(t, "testdata/minimal.good.yaml"), "echo/pass")
	want := pipeline.RetryPlan{Attempts: pipeline.DefaultAttempts, Backoff: pipeline.BackoffPlan{
		Initial: pipeline.DefaultBackoffInitial, Max: pipeline.DefaultBackoffMax,
		Multiplier: pipeline.DefaultBackoffMultiplier, Jitter: pipeline.DefaultBackoffJitter}}
	if !reflect.DeepEqual(s.Retry, want) || s.Ordering != pipeline.OrderByKey || s.Timeout != pipeline.DefaultTimeout {
		t.Fatalf("got retry %+v ordering %q timeout %s", s.Retry, s.Ordering, s.Timeout)
	}
	if s.Dedup != nil || s.RetryTopics != nil {
		t.Fatalf("got dedup %+v retry topics %v, want none", s.Dedup, s.RetryTopics)
	}
	if got := fmt.Sprint(s.Inputs); got != "[{echo.in echo.in 1}]" {
		t.Fatalf("inputs %s", got)
	}
}

func TestPlan_retry_topics_follow_the_tiers(t *testing.T) {
	p := plan(t, "testdata/policies.good.yaml")
	for id, want := range map[string][]string{
		"orders/price":   {"orders.price.retry.1"},
		"orders/confirm": {"orders.confirm.retry.1", "orders.confirm.retry.2", "orders.confirm.retry.3"},
		"orders/ship":    nil,
	} {
		if got := stage(t, p, id).RetryTopics; !reflect.DeepEqual(got, want) {
			t.Errorf("%s: retry topics %v, want %v", id, got, want)
		}
	}
}

func TestPlan_dedup_takes_defaults_and_compiles_the_key(t *testing.T) {
	p := plan(t, "testdata/policies.good.yaml")
	price := stage(t, p, "orders/price").Dedup
	if price == nil || price.Key != ".order_id" || price.Window != 24*time.Hour || price.MaxKeys != 1_000_000 ||
		price.Changelog != "orders.price.dedup" || price.KeyOf == nil {
		t.Fatalf("price dedup %+v", price)
	}
	confirm := stage(t, p, "orders/confirm").Dedup
	if confirm == nil || confirm.Window != pipeline.DefaultDedupWindow || confirm.MaxKeys != pipeline.DefaultDedupMaxKeys ||
		confirm.Changelog != "orders.confirm.dedup" {
		t.Fatalf("confirm dedup %+v", confirm)
	}
	if stage(t, p, "orders/ship").Dedup != nil {
		t.Fatal("ship has no dedup block")
	}
}

func TestPlan_priority_lists_inputs_heaviest_first_for_the_first_stage_only(t *testing.T) {
	tests := []struct {
		file, pipeline string
		want           string
	}{
		// The input is implicit, weight 1, ahead of the listed weight 1.
		{"testdata/policies.good.yaml", "orders",
			"[{high orders.high 8} {mid orders.mid 3} {orders orders 1} {orders.low orders.low 1}]"},
		// The input listed with its own weight; equal weights keep their order.
		{"testdata/builtins.good.yaml", "jobs", "[{urgent jobs.urgent 5} {jobs jobs 5} {jobs.bulk jobs.bulk 1}]"},
		{"testdata/minimal.good.yaml", "echo", "[{echo.in echo.in 1}]"},
	}
	for _, tt := range tests {
		t.Run(tt.pipeline, func(t *testing.T) {
			pp, err := plan(t, tt.file).Pipeline(tt.pipeline)
			if err != nil {
				t.Fatal(err)
			}
			if got := fmt.Sprint(pp.Priority); got != tt.want {
				t.Errorf("priority %s, want %s", got, tt.want)
			}
			if got := fmt.Sprint(pp.Stages[0].Inputs); got != tt.want {
				t.Errorf("first stage inputs %s, want %s", got, tt.want)
			}
			for _, s := range pp.Stages[1:] {
				want := fmt.Sprintf("[{%s %s 1}]", s.Input, s.Input)
				if got := fmt.Sprint(s.Inputs); got != want {
					t.Errorf("stage %s inputs %s, want %s", s.Name, got, want)
				}
			}
		})
	}
}

func TestPlan_topics_include_priority_retry_and_compacted_dedup_topics(t *testing.T) {
	var got []string
	for _, tp := range plan(t, "testdata/policies.good.yaml").Topics() {
		s := fmt.Sprintf("%s/%d", tp.Name, tp.Partitions)
		if tp.Config != nil {
			s += fmt.Sprint(tp.Config)
		}
		got = append(got, s)
	}
	want := []string{
		"bare.in/3", "bare.quarantine/3",
		"orders/4", "orders.confirm/4", "orders.confirm.dedup/4map[cleanup.policy:compact,delete retention.ms:172800000 segment.ms:86400000]",
		"orders.confirm.retry.1/4", "orders.confirm.retry.2/4", "orders.confirm.retry.3/4",
		"orders.done/4", "orders.high/4", "orders.low/4", "orders.mid/4",
		"orders.price.dedup/4map[cleanup.policy:compact,delete retention.ms:172800000 segment.ms:86400000]", "orders.price.retry.1/4",
		"orders.quarantine/4", "orders.ship/4",
		"plain.in/3", "plain.quarantine/3",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("topics:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestPlan_group_timeouts_come_from_the_nearest_level(t *testing.T) {
	p := plan(t, "testdata/group-timeouts.good.yaml")
	tests := []struct {
		stage              string
		session, rebalance time.Duration
	}{
		{"render/fetch", 45 * time.Second, 2 * time.Minute}, // pipeline, defaults
		{"render/encode", 30 * time.Minute, 24 * time.Hour}, // the stage's own
		{"render/upload", 45 * time.Second, time.Second},    // `session_timeout:` alone is absent
		{"plain/only", 6 * time.Second, 2 * time.Minute},    // stage, defaults
		{"echo/pass", 0, 0}, // set nowhere: 0, the engine's defaults
	}
	minimal := plan(t, "testdata/minimal.good.yaml")
	for _, tt := range tests {
		t.Run(tt.stage, func(t *testing.T) {
			from := p
			if tt.stage == "echo/pass" {
				from = minimal
			}
			s := stage(t, from, tt.stage)
			if s.SessionTimeout != tt.session || s.RebalanceTimeout != tt.rebalance {
				t.Errorf("session %s rebalance %s, want %s %s", s.SessionTimeout, s.RebalanceTimeout, tt.session, tt.rebalance)
			}
		})
	}
}
