package pipeline_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/millrace/millrace/pipeline"
)

// problemsIn parses src and returns its problems as "line:col: message".
func problemsIn(t *testing.T, src string, env func(string) (string, bool)) []string {
	t.Helper()
	_, err := pipeline.Parse("x.yaml", []byte(src), env)
	if err == nil {
		return nil
	}
	var ps pipeline.Problems
	if !errors.As(err, &ps) {
		t.Fatalf("want Problems, got %T %v", err, err)
	}
	var out []string
	for _, p := range ps {
		out = append(out, strings.TrimPrefix(p.String(), "x.yaml:"))
	}
	return out
}

func checkProblems(t *testing.T, src string, env func(string) (string, bool), want []string) {
	t.Helper()
	got := problemsIn(t, src, env)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

const collide = `: Kafka refuses topic names that are equal once '.' reads as '_'; rename one`

func TestValidate_reports_colliding_topic_names(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string
	}{
		{"pipelines web.clicks and web_clicks", `version: 1
pipelines:
  - name: web.clicks
    input: web.clicks
    stages:
      - {name: count, filter: log}
      - {name: store, filter: log}
  - name: web_clicks
    input: web_clicks
    stages:
      - {name: count, filter: log}
      - {name: store, filter: log}
`, []string{
			`8:11: topic "web_clicks.quarantine" (the quarantine topic of pipeline "web_clicks") collides with "web.clicks.quarantine" (the quarantine topic of pipeline "web.clicks", line 3)` + collide +
				`; so does "web_clicks.quarantine.replayed" (the replay progress topic of pipeline "web_clicks") with "web.clicks.quarantine.replayed" (the replay progress topic of pipeline "web.clicks", line 3)`,
			`9:12: topic "web_clicks" (the input of pipeline "web_clicks") collides with "web.clicks" (the input of pipeline "web.clicks", line 4)` + collide,
			`12:16: topic "web_clicks.store" (the topic stage web_clicks/store reads) collides with "web.clicks.store" (the topic stage web.clicks/store reads, line 7)` + collide,
		}},
		{"an output and a later input", `version: 1
pipelines:
  - name: a
    input: a.in
    output: jobs.done
    stages: [{name: s, filter: log}]
  - name: b
    input: jobs_done
    stages: [{name: s, filter: log}]
`, []string{
			`8:12: topic "jobs_done" (the input of pipeline "b") collides with "jobs.done" (the output of pipeline "a", line 5)` + collide,
		}},
		{"a stage topic and a later priority topic", `version: 1
pipelines:
  - name: a
    input: a.in
    stages: [{name: s, filter: log}, {name: t, filter: log}]
  - name: b
    input: b.in
    priority: [{topic: a_t, weight: 2}]
    stages: [{name: s, filter: log}]
`, []string{
			`8:24: topic "a_t" (a priority topic of pipeline "b") collides with "a.t" (the topic stage a/t reads, line 5)` + collide,
		}},
		{"a retry tier topic and a later input", `version: 1
defaults:
  retry: {tiers: [1s, 1m]}
pipelines:
  - name: a
    input: a.in
    stages: [{name: s, filter: log}]
  - name: b
    input: a.s.retry_2
    stages: [{name: s, filter: log}]
`, []string{
			`9:12: topic "a.s.retry_2" (the input of pipeline "b") collides with "a.s.retry.2" (stage a/s's retry tier 2 topic, line 7)` + collide,
		}},
		{"a dedup changelog and an earlier output", `version: 1
pipelines:
  - name: a
    input: a.in
    output: b.s_dedup
    stages: [{name: s, filter: log}]
  - name: b
    input: b.in
    stages: [{name: s, filter: log, dedup: {key: .id}}]
`, []string{
			`9:21: topic "b.s.dedup" (stage b/s's dedup changelog) collides with "b.s_dedup" (the output of pipeline "a", line 5)` + collide,
		}},
		{"a stage's own topic and a later quarantine topic", `version: 1
pipelines:
  - name: a
    input: a.in
    stages:
      - {name: s, filter: log}
      - {name: t, filter: log, topic: b_quarantine}
  - name: b
    input: b.in
    stages: [{name: s, filter: log}]
`, []string{
			`8:11: topic "b.quarantine" (the quarantine topic of pipeline "b") collides with "b_quarantine" (the topic stage a/t reads, line 7)` + collide,
		}},
		{"three uses of two spellings: one problem", `version: 1
pipelines:
  - name: a
    input: x.y
    stages: [{name: s, filter: log}]
  - name: b
    input: x.y
    stages: [{name: s, filter: log}]
  - name: c
    input: x_y
    stages: [{name: s, filter: log}]
  - name: d
    input: d.in
    output: x_y
    stages: [{name: s, filter: log}]
`, []string{
			`10:12: topic "x_y" (the input of pipeline "c") collides with "x.y" (the input of pipeline "a", line 4)` + collide,
		}},
		{"the replay progress topic", `version: 1
pipelines:
  - name: a
    input: a.in
    stages: [{name: s, filter: log}, {name: quarantine.replayed, filter: log}]
  - name: b
    input: a.quarantine_replayed
    stages: [{name: s, filter: log}]
`, []string{
			`5:45: topic "a.quarantine.replayed" (the topic stage a/quarantine.replayed reads) is also the replay progress topic of pipeline "a" (line 3): rename one`,
			`7:12: topic "a.quarantine_replayed" (the input of pipeline "b") collides with "a.quarantine.replayed" (the replay progress topic of pipeline "a", line 3)` + collide,
		}},
		{"'-' is not '_'", `version: 1
pipelines:
  - name: web-clicks
    input: web-clicks
    stages: [{name: s, filter: log}, {name: t, filter: log}]
  - name: web_clicks
    input: web_clicks
    stages: [{name: s, filter: log}, {name: t, filter: log}]
`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { checkProblems(t, tt.src, noEnv, tt.want) })
	}
}

func TestValidate_reports_derived_topic_names_longer_than_kafka_allows(t *testing.T) {
	long := func(n int) string { return strings.Repeat("a", n) }
	tests := []struct {
		name     string
		pipeline string
		stage    string
		want     []string
	}{
		{"a replay progress topic of 249 characters", long(229), "s", nil},
		{"a replay progress topic of 250 characters", long(230), "s", []string{
			`3:11: the replay progress topic of pipeline "` + long(230) + `" would be 250 characters long (Kafka allows 249): shorten the pipeline name`,
		}},
		{"retry tier topics and a dedup changelog", long(200), long(45), []string{
			`9:15: stage ` + long(200) + `/` + long(45) + `'s retry tier 1 topic would be 254 characters long (Kafka allows 249): shorten the pipeline or stage name`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := `version: 1
pipelines:
  - name: ` + tt.pipeline + `
    input: in
    retry: {tiers: [1s, 1m]}
    stages:
      - name: first
        filter: log
      - name: ` + tt.stage + `
        filter: log
        dedup: {key: .id}
`
			checkProblems(t, src, noEnv, tt.want)
		})
	}
}
