package pipeline_test

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/millrace/millrace/pipeline"
)

func TestPlan_results_take_the_file_then_the_defaults(t *testing.T) {
	p := plan(t, "testdata/full.good.yaml")
	orders, err := p.Pipeline("orders")
	if err != nil {
		t.Fatal(err)
	}
	want := &pipeline.ResultsPlan{
		Keep:          48 * time.Hour,
		ReplyTopics:   []string{"orders.replies"},
		ReplyMaxBytes: 32768,
		Callback: &pipeline.CallbackPlan{URL: "https://Hooks.Example.com:8443/millrace", Secret: "dev-secret",
			Timeout: 5 * time.Second, RetryInitial: 2 * time.Second, RetryMax: 2 * time.Minute, RetryDeadline: 2 * time.Hour},
		CallbackHosts: []string{"hooks.example.com", "*.example.org"},
		EventsTopic:   "orders.jobs",
		StatusTopic:   "orders.jobs.status",
		Group:         "millrace.orders.jobs",
	}
	if !reflect.DeepEqual(orders.Results, want) {
		t.Errorf("orders results:\n got  %+v %+v\n want %+v %+v", orders.Results, orders.Results.Callback, want, want.Callback)
	}
	followup, _ := p.Pipeline("followup")
	want = &pipeline.ResultsPlan{Keep: pipeline.DefaultResultsKeep, ReplyMaxBytes: pipeline.DefaultReplyMaxBytes,
		EventsTopic: "followup.jobs", StatusTopic: "followup.jobs.status", Group: "millrace.followup.jobs"}
	if !reflect.DeepEqual(followup.Results, want) {
		t.Errorf("`results: {}`:\n got  %+v\n want %+v", followup.Results, want)
	}
	for _, pp := range []*pipeline.PipelinePlan{orders, followup} {
		for i, s := range pp.Stages {
			if s.Results != pp.Results {
				t.Errorf("stage %s: results %p, want the pipeline's %p", s.ID(), s.Results, pp.Results)
			}
			if s.Stages != len(pp.Stages) || s.Last() != (i == len(pp.Stages)-1) {
				t.Errorf("stage %s: index %d of %d, last %v", s.ID(), s.Index, s.Stages, s.Last())
			}
		}
	}
}

func TestPlan_results_are_off_without_the_block_or_with_no_value(t *testing.T) {
	for _, block := range []string{"", "    results:\n", "    results: ~\n"} {
		src := "version: 1\npipelines:\n  - name: p\n    input: p.in\n" + block + "    stages: [{name: a, filter: log}]\n"
		f, err := pipeline.Parse("x.yaml", []byte(src), noEnv)
		if err != nil {
			t.Fatal(err)
		}
		pl := f.Plan()
		if pl.Pipelines[0].Results != nil || pl.Pipelines[0].Stages[0].Results != nil {
			t.Errorf("%q: results on", block)
		}
		for _, tp := range pl.Topics() {
			if strings.Contains(tp.Name, "jobs") {
				t.Errorf("%q: topic %s", block, tp.Name)
			}
		}
	}
}

func TestPlan_topics_of_results(t *testing.T) {
	src := `version: 1
pipelines:
  - name: p
    input: p.in
    partitions: 3
    results: {keep: 2h, reply_topics: [p.replies]}
    stages: [{name: a, filter: log}]
  - name: audit
    input: p.jobs
    partitions: 5
    stages: [{name: a, filter: log}]
`
	f, err := pipeline.Parse("x.yaml", []byte(src), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	topics := map[string]pipeline.Topic{}
	for _, tp := range f.Plan().Topics() {
		topics[tp.Name] = tp
	}
	want := map[string]pipeline.Topic{
		// Read by audit with 5 partitions: the status topic follows.
		"p.jobs": {Name: "p.jobs", Partitions: 5, Config: map[string]string{
			"cleanup.policy": "delete", "retention.ms": "10800000", "segment.ms": "7200000"}},
		"p.jobs.status": {Name: "p.jobs.status", Partitions: 5, Config: map[string]string{
			"cleanup.policy": "compact,delete", "retention.ms": "10800000", "segment.ms": "7200000"}},
		"p.replies": {Name: "p.replies", Partitions: 3},
	}
	for name, w := range want {
		if got := topics[name]; !reflect.DeepEqual(got, w) {
			t.Errorf("topic %s:\n got  %+v\n want %+v", name, got, w)
		}
	}
	if c := pipeline.JobsTopicConfig(time.Minute); c["segment.ms"] != "3600000" || c["retention.ms"] != "3660000" {
		t.Errorf("a keep under an hour: %v", c)
	}
}

func TestCallback_secret_is_never_formatted(t *testing.T) {
	const secret = "hunter2-canary"
	env := func(k string) (string, bool) { return secret, k == "S" }
	src := `version: 1
pipelines:
  - name: p
    input: p.in
    results:
      callback: {url: "https://user:pa55word@hooks.example.com/x", secret: "${S}"}
      callback_hosts: [hooks.example.com]
    stages: [{name: a, filter: log}]
`
	f, err := pipeline.Parse("x.yaml", []byte(src), env)
	if err != nil {
		t.Fatal(err)
	}
	pl := f.Plan()
	cb := pl.Pipelines[0].Results.Callback
	if cb.Secret != secret {
		t.Fatalf("secret %q, want the value of $S", cb.Secret)
	}
	values := []any{pl, *pl, pl.Pipelines[0], pl.Pipelines[0].Stages[0], pl.Pipelines[0].Results, cb, *cb,
		f, *f.Pipelines[0].Results, f.Pipelines[0].Results.Callback}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%d"} {
		for i, v := range values {
			if got := fmt.Sprintf(verb, v); strings.Contains(got, secret) || strings.Contains(got, "pa55word") {
				t.Errorf("%s of value %d (%T) shows the secret: %s", verb, i, v, got)
			}
		}
	}
	if got, want := cb.String(), `{URL:"https://user:xxxxx@hooks.example.com/x" Secret:[redacted] Timeout:10s RetryInitial:1s RetryMax:1m0s RetryDeadline:1h0m0s}`; got != want {
		t.Errorf("String:\n got  %s\n want %s", got, want)
	}
}

func TestParse_never_shows_a_callback_secret(t *testing.T) {
	// Every problem a callback can have, with the secret written in the
	// file and through the environment.
	const secret = "hunter2-canary"
	env := func(k string) (string, bool) { return secret, k == "S" }
	for _, written := range []string{secret, "${S}"} {
		src := `version: 1
pipelines:
  - name: p
    input: p.in
    results:
      callback: {url: "ftp://x", secret: "` + written + `", timeout: 0s, retry: {initial: 2s, max: 1s}, secret: "` + written + `"}
      callback_hosts: [hooks.example.com]
    stages: [{name: a, filter: log}]
  - name: q
    input: q.in
    results:
      callback: {url: "https://evil.example.net", secret: ["` + written + `"]}
      callback_hosts: [hooks.example.com]
    stages: [{name: a, filter: log}]
`
		got := problemsIn(t, src, env)
		if len(got) < 5 {
			t.Errorf("%s: want every problem, got:\n%s", written, strings.Join(got, "\n"))
		}
		for _, p := range got {
			if strings.Contains(p, secret) {
				t.Errorf("%s: a problem shows the secret: %s", written, p)
			}
		}
	}
}
