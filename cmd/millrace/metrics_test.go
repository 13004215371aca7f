package main_test

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/millrace/millrace/testkit"
	"github.com/millrace/millrace/testkit/prometheus"
)

var (
	dashboardFile = filepath.Join("..", "..", "deploy", "grafana", "millrace.json")
	alertsFile    = filepath.Join("..", "..", "deploy", "prometheus", "alerts.yml")
)

// metricsPipeline has two stages and a policy for every counter: check
// drops records with "drop" and quarantines what is not JSON (permanent,
// no retries); finish fails records with "fail" (retried inline once,
// then quarantined) and skips ids it has done (dedup).
func metricsPipeline(name string) string {
	return fmt.Sprintf(`version: 1
pipelines:
  - name: %[1]s
    input: %[1]s.in
    output: %[1]s.out
    partitions: 3
    retry: {attempts: 2, backoff: {initial: 1ms, max: 1ms}}
    stages:
      - {name: check, filter: jq, config: {program: 'select(.drop != true)'}}
      - name: finish
        filter: exec
        config:
          command: [sh, -c, 'read -r r; case "$r" in *fail*) echo asked to fail >&2; exit 1;; esac; printf "%%s" "$r"']
        dedup: {key: .id}
`, name)
}

// TestRun_metrics_scraped_by_a_real_prometheus is issue 13's acceptance
// on the metrics: 1,000 records, 10 of them poison, through a 2-stage
// `millrace run`; its /metrics and a real Prometheus scraping it both say
// 1,000 consumed at stage 1, 10 quarantined, 990 produced by the last
// stage. Then a few records make every other counter count, promtool
// checks the exposition and the alerts, and every expression of the
// Grafana dashboard and the alerts is evaluated in that Prometheus: none
// may fail to parse or read a metric the scrape does not have.
func TestRun_metrics_scraped_by_a_real_prometheus(t *testing.T) {
	testkit.ForEachBackend(t, func(t *testing.T, b testkit.Backend) {
		dir := t.TempDir()
		name := "obs-" + testkit.Unique()
		brokers := strings.Join(b.Brokers, ",")
		writeFile(t, dir, "pipelines.yaml", metricsPipeline(name))
		run := start(t, "millrace run", dir, nil, "run", "--brokers", brokers)
		admin := adminAddr(t, run)
		run.waitLog("stage ready", 2, 60*time.Second)

		prom := prometheus.StartWith(t, prometheus.Options{Targets: []string{admin}, RuleFiles: []string{alertsFile}})
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		if err := prom.WaitScraped(ctx, admin); err != nil {
			t.Fatal(err)
		}

		// 1,000 records: 990 keyed JSON records and 10 that are not JSON.
		var good, poison strings.Builder
		for i := 0; i < 990; i++ {
			fmt.Fprintf(&good, `{"id":%d,"k":"k%d"}`+"\n", i, i)
		}
		for i := 0; i < 10; i++ {
			fmt.Fprintf(&poison, "poison %d: not JSON\n", i)
		}
		produce(t, dir, brokers, good.String(), "--pipeline", name, "--key-jq", ".k")
		produce(t, dir, brokers, poison.String(), "--pipeline", name)
		b.Read(t, name+".out", 990, 2*time.Minute)
		b.Read(t, name+".quarantine", 10, time.Minute)

		totals := []struct {
			what, metric string
			labels       map[string]string
			want         float64
		}{
			{"consumed at stage 1", "millrace_records_consumed_total", map[string]string{"pipeline": name, "stage": "check"}, 1000},
			{"quarantined", "millrace_records_quarantined_total", map[string]string{"pipeline": name}, 10},
			{"produced at the last stage", "millrace_records_produced_total", map[string]string{"pipeline": name, "stage": "finish"}, 990},
		}
		for _, tt := range totals {
			var got float64 // the last value seen, for the failure message
			testkit.Eventually(t, 30*time.Second, func() bool { got = sumOf(scrape(t, admin), tt.metric, tt.labels); return got == tt.want },
				"/metrics: %s%s adds up to %v, want %v", tt.metric, matchers(tt.labels), later(func() any { return got }), tt.want)
			if err := prom.AwaitValue(ctx, "sum("+tt.metric+matchers(tt.labels)+")", tt.want); err != nil {
				t.Errorf("%s: %v", tt.what, err)
			}
		}
		if t.Failed() {
			t.FailNow()
		}
		t.Logf("%s: /metrics and Prometheus: 1000 consumed at check, 10 quarantined, 990 produced at finish", b.Name)

		// One record of each remaining outcome: dropped at check, a
		// duplicate skipped at finish, one failing at finish (retried,
		// then quarantined).
		produce(t, dir, brokers, `{"id":-1,"k":"drop","drop":true}`+"\n"+`{"id":5,"k":"k5"}`+"\n"+`{"id":-2,"k":"fail","fail":true}`+"\n",
			"--pipeline", name, "--key-jq", ".k")
		b.Read(t, name+".quarantine", 11, time.Minute)
		for _, expr := range []string{
			fmt.Sprintf(`sum(millrace_records_dropped_total{pipeline=%q}) >= bool 1`, name),
			fmt.Sprintf(`sum(millrace_dedup_skipped_total{pipeline=%q}) >= bool 1`, name),
			fmt.Sprintf(`sum(millrace_retries_total{pipeline=%q}) >= bool 1`, name),
			fmt.Sprintf(`sum(millrace_records_quarantined_total{pipeline=%q}) == bool 11`, name),
		} {
			if err := prom.AwaitValue(ctx, expr, 1); err != nil {
				t.Fatal(err)
			}
		}

		code, body := get(t, "http://"+admin+"/metrics", "")
		if code != http.StatusOK {
			t.Fatalf("GET /metrics: %d %s", code, body)
		}
		if err := prometheus.CheckMetrics(t, []byte(body)); err != nil {
			t.Errorf("the exposition of millrace run: %v", err)
		}
		if err := prometheus.CheckRules(t, alertsFile); err != nil {
			t.Error(err)
		}
		checkDeployExprs(t, ctx, prom, name, []string{"check", "finish"})
		run.stop(30 * time.Second)
	})
}

// checkDeployExprs evaluates every expression of the dashboard and the
// alerts in prom, and wants every millrace metric they read in its data.
// Dashboard variables take the values of pipeline and its stages: one
// stage (what a user picks), then all of them (what Grafana sends for
// All, a regex), with which every panel must show data, so that a label
// typo shows. The alerts must be healthy in prom, which loaded them.
func checkDeployExprs(t *testing.T, ctx context.Context, prom *prometheus.Server, pipeline string, stages []string) {
	t.Helper()
	vars := func(stage string) map[string]string {
		return map[string]string{"pipeline": pipeline, "stage": stage, "__rate_interval": "1m", "__interval": "1m", "__range": "5m"}
	}
	rep, err := prom.CheckExprs(ctx, prometheus.ExprCheck{
		Dashboards: []string{dashboardFile},
		RuleFiles:  []string{alertsFile},
		Prefix:     "millrace_",
		Vars:       []map[string]string{vars(stages[0]), vars("(" + strings.Join(stages, "|") + ")")},
	})
	if err != nil {
		t.Errorf("the dashboard and the alerts against the scrape of millrace run:\n%v", err)
	}
	if rep.Exprs == 0 || rep.Rules == 0 {
		t.Fatalf("%d dashboard and %d alert expressions: the files were not read", rep.Exprs, rep.Rules)
	}
	rules, err := prom.AwaitRulesEvaluated(ctx)
	if err != nil {
		t.Error(err)
	}
	for _, r := range rules {
		if r.Health != "ok" {
			t.Errorf("alert %s in Prometheus: health %s: %s", r.Name, r.Health, r.LastError)
		}
	}
	if !t.Failed() {
		t.Logf("%d dashboard expressions, %d variables and %d alert rules evaluated; the %d millrace metrics they read are all in the scrape: %v",
			rep.Exprs, rep.Variables, rep.Rules, len(rep.Metrics), rep.Metrics)
	}
}

// produce runs millrace produce with stdin and args; it must succeed.
func produce(t *testing.T, dir, brokers, stdin string, args ...string) {
	t.Helper()
	out, stderr, code := cli(t, dir, stdin, append([]string{"produce", "--brokers", brokers}, args...)...)
	if code != 0 {
		t.Fatalf("produce %v: exit %d\n%s%s", args, code, out, stderr)
	}
}

// matchers writes labels as a PromQL label matcher list.
func matchers(labels map[string]string) string {
	var ms []string
	for k, v := range labels {
		ms = append(ms, fmt.Sprintf("%s=%q", k, v))
	}
	sort.Strings(ms)
	return "{" + strings.Join(ms, ",") + "}"
}
