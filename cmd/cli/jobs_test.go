package cli

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/millrace/millrace/filters"
	"github.com/millrace/millrace/jobs"
	"github.com/millrace/millrace/kafkaops"
	"github.com/millrace/millrace/pipeline"
	"github.com/millrace/millrace/testkit"
)

// onlyOrders keeps job results for the pipeline orders only.
func onlyOrders(pl *pipeline.PipelinePlan) (jobResults, bool) {
	if pl.Name != "orders" {
		return jobResults{}, false
	}
	return resultsOf(pl)
}

// parseJobs is parseArgs with results, if not nil, saying which pipelines
// keep job results.
func parseJobs(t *testing.T, results func(*pipeline.PipelinePlan) (jobResults, bool), args ...string) parsed {
	t.Helper()
	file := filepath.Join(t.TempDir(), "pipelines.yaml")
	if err := os.WriteFile(file, []byte(testPipelines), 0o644); err != nil {
		t.Fatal(err)
	}
	var errb bytes.Buffer
	var p parsed
	g := &globals{stdin: strings.NewReader(""), stdout: &bytes.Buffer{}, stderr: &errb, results: results}
	g.parsed = func(cmd *cobra.Command, opts any) error {
		p.cmd, p.opts = cmd.CommandPath(), opts
		return nil
	}
	p.code, p.msg = g.execute(context.Background(), append([]string{"-f", file}, args...))
	p.msg = errb.String() + p.msg
	return p
}

func TestParse_jobs_options(t *testing.T) {
	t.Setenv("MILLRACE_BROKERS", "")
	cl := kafkaops.Cluster{Brokers: []string{"file-broker:9092"}, ClientID: "from-file", ConnectTimeout: 10 * time.Second}
	orders := jobs.Source{Shape: jobs.Shape{Pipeline: "orders", Stages: []string{"check", "price"}, Output: true},
		Topic: "orders.jobs", Keep: jobs.DefaultKeep}
	other := jobs.Source{Shape: jobs.Shape{Pipeline: "other", Stages: []string{"only"}}, Topic: "other.jobs", Keep: jobs.DefaultKeep}
	since := time.Date(2026, 11, 20, 14, 0, 0, 0, time.UTC)
	tests := []struct {
		name    string
		results func(*pipeline.PipelinePlan) (jobResults, bool)
		args    []string
		want    any
	}{
		{"status looks in every pipeline with results", nil, []string{"jobs", "status", "j-1"},
			jobStatusOptions{FindOptions: jobs.FindOptions{Cluster: cl, Sources: []jobs.Source{orders, other}, Job: "j-1"}}},
		{"status of one pipeline", nil, []string{"jobs", "status", "j-1", "--pipeline", "other", "--wait", "5m", "--json", "--connect-timeout", "0"},
			jobStatusOptions{FindOptions: jobs.FindOptions{Cluster: kafkaops.Cluster{Brokers: cl.Brokers, ClientID: cl.ClientID},
				Sources: []jobs.Source{other}, Job: "j-1", Wait: 5 * time.Minute}, json: true}},
		{"status skips pipelines without results", onlyOrders, []string{"jobs", "status", "j-1"},
			jobStatusOptions{FindOptions: jobs.FindOptions{Cluster: cl, Sources: []jobs.Source{orders}, Job: "j-1"}}},
		{"ls with a duration ago", nil, []string{"jobs", "ls", "--pipeline", "orders", "--status", "failed", "--since", "90m", "-n", "3", "--json"},
			jobsLsOptions{ListOptions: jobs.ListOptions{Cluster: cl, Source: orders, Filter: jobs.Filter{State: jobs.StateFailed, Limit: 3}},
				sinceAgo: 90 * time.Minute, json: true}},
		{"ls since a time", nil, []string{"jobs", "ls", "--pipeline", "other", "--since", "2026-11-20T14:00:00Z"},
			jobsLsOptions{ListOptions: jobs.ListOptions{Cluster: cl, Source: other, Filter: jobs.Filter{Since: since}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := parseJobs(t, tt.results, tt.args...)
			if p.code != 0 {
				t.Fatalf("exit %d: %s", p.code, p.msg)
			}
			switch o := p.opts.(type) {
			case jobStatusOptions:
				if o.Log == nil {
					t.Error("no logger")
				}
				o.Log = nil
				p.opts = o
			case jobsLsOptions:
				if o.Log == nil {
					t.Error("no logger")
				}
				o.Log = nil
				p.opts = o
			}
			if got, want := fmt.Sprintf("%+v", p.opts), fmt.Sprintf("%+v", tt.want); got != want {
				t.Errorf("options\n got  %s\n want %s", got, want)
			}
		})
	}
}

func TestParse_produce_wait_options(t *testing.T) {
	t.Setenv("MILLRACE_BROKERS", "")
	p := parseJobs(t, nil, "produce", "--pipeline", "orders", "--wait", "--wait-timeout", "2m", "-H", filters.HeaderCorrelationID+"=c-1")
	o, ok := p.opts.(produceOptions)
	if p.code != 0 || !ok {
		t.Fatalf("exit %d, options %T: %s", p.code, p.opts, p.msg)
	}
	ev := o.Events
	if !o.wait || o.Timeout != 2*time.Minute || o.Source.Topic != "orders.jobs" || fmt.Sprint(o.Source.Shape.Stages) != "[check price]" ||
		!o.Source.Shape.Output || ev.Name != "orders.jobs" || ev.Partitions != 4 || ev.Config["cleanup.policy"] != "delete" ||
		ev.Config["retention.ms"] != "90000000" || o.Topic.Name != "orders" {
		t.Errorf("produce --wait options: wait %v, timeout %s, source %+v, events %+v; want orders.jobs (4 partitions, kept 25h), 2m",
			o.wait, o.Timeout, o.Source, o.Events)
	}
	p = parseJobs(t, nil, "produce", "--pipeline", "orders")
	if o := p.opts.(produceOptions); o.wait || o.Events.Name != "" {
		t.Errorf("produce without --wait: %+v, want no wait", o)
	}
}

func TestParse_jobs_usage_errors_exit_2_naming_the_flag(t *testing.T) {
	tests := []struct {
		results func(*pipeline.PipelinePlan) (jobResults, bool)
		args    []string
		want    string
	}{
		{nil, []string{"jobs"}, "jobs needs a subcommand"},
		{nil, []string{"jobs", "status"}, "jobs status takes one job ID"},
		{nil, []string{"jobs", "status", "a", "b"}, "jobs status takes one job ID"},
		{nil, []string{"jobs", "status", "a", "--wait", "-1s"}, "--wait -1s: want 0 (do not wait) or more"},
		{nil, []string{"jobs", "status", "a", "--wait"}, "flag needs an argument: --wait"},
		{nil, []string{"jobs", "status", "a", "--pipeline", "nope"}, `--pipeline: no pipeline "nope"`},
		{onlyOrders, []string{"jobs", "status", "a", "--pipeline", "other"}, `--pipeline "other" keeps no job results`},
		{func(*pipeline.PipelinePlan) (jobResults, bool) { return jobResults{}, false }, []string{"jobs", "status", "a"},
			"no pipeline of"},
		{nil, []string{"jobs", "status", "a", "--connect-timeout", "-1s"}, "--connect-timeout -1s"},
		{nil, []string{"jobs", "ls"}, "--pipeline is required"},
		{onlyOrders, []string{"jobs", "ls", "--pipeline", "other"}, `--pipeline "other" keeps no job results`},
		{nil, []string{"jobs", "ls", "--pipeline", "orders", "--status", "done"}, `--status "done"`},
		{nil, []string{"jobs", "ls", "--pipeline", "orders", "--since", "yesterday"}, `--since "yesterday"`},
		{nil, []string{"jobs", "ls", "--pipeline", "orders", "--since", "-1h"}, "--since -1h"},
		{nil, []string{"jobs", "ls", "--pipeline", "orders", "-n", "-1"}, "--limit -1"},
		{onlyOrders, []string{"produce", "--pipeline", "other", "--wait"}, "--wait needs results: in the pipeline"},
		{nil, []string{"produce", "--pipeline", "orders", "--wait-timeout", "1m"}, "--wait-timeout needs --wait"},
		{nil, []string{"produce", "--pipeline", "orders", "--wait", "--wait-timeout", "-1m"}, "--wait-timeout -1m"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			p := parseJobs(t, tt.results, tt.args...)
			if p.code != exitUsage || strings.Count(p.msg, "\n") != 0 || !strings.HasPrefix(p.msg, "millrace: ") ||
				!strings.Contains(p.msg, tt.want) || !strings.HasSuffix(p.msg, " --help')") {
				t.Fatalf("exit %d, message %q; want exit 2 and one line holding %q and pointing at --help", p.code, p.msg, tt.want)
			}
			if p.opts != nil {
				t.Fatalf("bad usage reached the call with %+v", p.opts)
			}
		})
	}
}

var ft0 = time.Date(2026, 11, 29, 8, 0, 0, 0, time.UTC)

func TestFormat_job_status_list_and_outcomes(t *testing.T) {
	fin := ft0.Add(90 * time.Second)
	failed := jobs.Status{Job: "j-1", Pipeline: "orders", State: jobs.StateFailed,
		Counts: jobs.Counts{Outputs: 1, Dropped: 1, Quarantined: 1}, Started: ft0, Updated: fin, Finished: &fin,
		Errors:  []jobs.Failure{{Stage: "price", Error: "no price\nfor sku 7", Origin: "orders.price/0/7", At: ft0.Add(time.Minute)}},
		ReplyTo: "replies", CorrelationID: "c 1", Results: []jobs.Location{{Topic: "orders.done", Partition: 1, Offset: 3}}}
	var b bytes.Buffer
	printStatus(&b, failed, []string{"check", "price"})
	want := `job       j-1
pipeline  orders
status    failed
started   2026-11-29T08:00:00Z
updated   2026-11-29T08:01:30Z
finished  2026-11-29T08:01:30Z, after 1m30s
counts    outputs 1, dropped 1, quarantined 1, skipped 0
reply     to replies, correlation id "c 1"
results   orders.done/1/3
error     price at 2026-11-29T08:01:00Z (orders.price/0/7): "no price\nfor sku 7"
`
	if b.String() != want {
		t.Errorf("status:\n%s\nwant:\n%s", b.String(), want)
	}
	running := jobs.Status{Job: "j-2", Pipeline: "orders", State: jobs.StateRunning, Started: ft0, Updated: ft0,
		Waiting: map[string]int{"price": 2, "check": 1, "gone": 1}}
	b.Reset()
	printStatus(&b, running, []string{"check", "price"})
	if !strings.Contains(b.String(), "waiting   check 1, price 2, gone 1\n") {
		t.Errorf("running status:\n%s\nwant the stages waited at in pipeline order", b.String())
	}
	for d, want := range map[time.Duration]string{24 * time.Hour: "24h", 90 * time.Minute: "1h30m", 90 * time.Second: "1m30s",
		time.Hour + time.Second: "1h0m1s", 1500 * time.Millisecond: "1.5s", 0: "0s"} {
		if got := pipeline.FormatDuration(d); got != want {
			t.Errorf("pipeline.FormatDuration(%s) = %s, want %s", d, got, want)
		}
	}
	b.Reset()
	printStatus(&b, jobs.Status{Job: "j-3", State: jobs.StateUnknown}, nil)
	if b.String() != "job     j-3\nstatus  unknown\n" {
		t.Errorf("unknown status: %q", b.String())
	}

	b.Reset()
	printJobs(&b, []jobs.Status{running, failed})
	want = `JOB  STATUS   STARTED               UPDATED               OUTPUTS  DROPPED  QUARANTINED  SKIPPED
j-2  running  2026-11-29T08:00:00Z  2026-11-29T08:00:00Z  0        0        0            0
j-1  failed   2026-11-29T08:00:00Z  2026-11-29T08:01:30Z  1        1        1            0
2 jobs
`
	if b.String() != want {
		t.Errorf("list:\n%s\nwant:\n%s", b.String(), want)
	}
	b.Reset()
	printJobs(&b, nil)
	if b.String() != "0 jobs\n" {
		t.Errorf("empty list: %q", b.String())
	}

	b.Reset()
	printOutcome(&b, failed, nil)
	printOutcome(&b, running, []string{"check", "price"})
	printOutcome(&b, jobs.Status{Job: "j-4", State: jobs.StateUnknown}, nil)
	want = `j-1  failed     outputs 1, dropped 1, quarantined 1, skipped 0
    price at 2026-11-29T08:01:00Z (orders.price/0/7): "no price\nfor sku 7"
j-2  running    waiting at check 1, price 2, gone 1
j-4  unknown    not seen yet
`
	if b.String() != want {
		t.Errorf("outcomes:\n%s\nwant:\n%s", b.String(), want)
	}
}

// jobsEnv is the embedded broker and a pipelines file naming it, for the
// commands to run against.
type jobsEnv struct {
	b    testkit.Backend
	file string
}

func newJobsEnv(t *testing.T) jobsEnv {
	t.Helper()
	t.Setenv("MILLRACE_BROKERS", "")
	b := testkit.Embedded(t)
	name := "cli-" + testkit.Unique()
	text := strings.NewReplacer("file-broker:9092", b.Brokers[0], "name: orders", "name: "+name, "input: orders", "input: "+name,
		"output: orders.done", "output: "+name+".done", "orders.high", name+".high", "replication_factor: 3", "replication_factor: 1").Replace(testPipelines)
	file := filepath.Join(t.TempDir(), "pipelines.yaml")
	if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return jobsEnv{b: b, file: file}
}

// run runs a command line against the env and returns its exit code,
// stdout and stderr.
func (e jobsEnv) run(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), append([]string{"-f", e.file}, args...), strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

// events writes events of the env's pipeline name to its events topic.
func (e jobsEnv) events(t *testing.T, name string, es ...jobs.Event) {
	t.Helper()
	recs := make([]testkit.Record, len(es))
	for i, ev := range es {
		recs[i] = testkit.Record{Key: []byte(ev.Job), Value: ev.Marshal()}
	}
	e.b.Produce(t, jobs.EventsTopic(name), recs)
}

// pipelineName reads the name the env gave its two-stage pipeline.
func (e jobsEnv) pipelineName(t *testing.T) string {
	t.Helper()
	f, err := pipeline.Load(e.file)
	if err != nil {
		t.Fatal(err)
	}
	return f.Plan().Pipelines[0].Name
}

func cev(id string, n int, lineage string, o jobs.Outcome, outputs int) jobs.Event {
	e := jobs.Event{Job: id, Stage: []string{"", "check", "price"}[n], N: n, Lineage: lineage, Outcome: o, Outputs: outputs,
		At: time.Now().Add(-time.Minute)}
	if o == jobs.Quarantined {
		e.Error, e.Origin = "no price", "x/0/1"
	}
	return e
}

// The commands end to end on the embedded broker: status of a job that
// succeeded, failed, runs or was never seen, with their exit codes; ls;
// status --wait timing out.
func TestJobs_status_and_ls_exit_codes(t *testing.T) {
	e := newJobsEnv(t)
	name := e.pipelineName(t)
	if code, _, errs := e.run(t, "", "jobs", "ls", "--pipeline", name); code != 0 || !strings.Contains(errs, "has not run with results: yet") {
		t.Fatalf("ls before any event: exit %d, %q", code, errs)
	}
	e.b.CreateTopic(t, jobs.EventsTopic(name), 2)
	e.events(t, name, cev("ok", 1, "", jobs.Done, 1), cev("ok", 2, "0", jobs.Done, 1),
		cev("bad", 1, "", jobs.Done, 1), cev("bad", 2, "0", jobs.Quarantined, 0), cev("run", 1, "", jobs.Done, 1))
	for _, tt := range []struct {
		args []string
		code int
		out  string
	}{
		{[]string{"jobs", "status", "ok"}, 0, "status    succeeded"},
		{[]string{"jobs", "status", "ok", "--pipeline", name, "--wait", "1m"}, 0, "status    succeeded"},
		{[]string{"jobs", "status", "bad", "--pipeline", name}, 1, "error     price at"},
		{[]string{"jobs", "status", "run", "--pipeline", name}, 0, "waiting   price 1"},
		{[]string{"jobs", "status", "run", "--json"}, 0, `"status": "running"`},
		{[]string{"jobs", "status", "nobody"}, 1, "status  unknown"},
		{[]string{"jobs", "ls", "--pipeline", name}, 0, "3 jobs"},
		{[]string{"jobs", "ls", "--pipeline", name, "--status", "failed", "--since", "1h", "--json"}, 0, "[\n  {\n    \"job\": \"bad\","},
		{[]string{"jobs", "ls", "--pipeline", name, "--status", "accepted", "--json", "--limit", "0"}, 0, "[]\n"},
	} {
		code, out, errs := e.run(t, "", tt.args...)
		if code != tt.code || !strings.Contains(out, tt.out) {
			t.Errorf("%s: exit %d\n%s%s\nwant exit %d and %q", strings.Join(tt.args, " "), code, out, errs, tt.code, tt.out)
		}
	}
	code, _, errs := e.run(t, "", "jobs", "status", "run", "--wait", "200ms")
	if code != 1 || !strings.Contains(errs, "job run is still running: --wait 200ms passed") {
		t.Errorf("status --wait of a job that does not finish: exit %d, %q", code, errs)
	}
	code, _, errs = e.run(t, "", "jobs", "status", "nobody")
	if code != 1 || !strings.Contains(errs, "no such job in") {
		t.Errorf("status of an unknown job: exit %d, %q", code, errs)
	}
}

// produce --wait announces the jobs, waits for them (a stand-in stage
// settles them) and prints each one's outcome; a failed job exits 1.
func TestProduce_wait_prints_each_jobs_outcome(t *testing.T) {
	e := newJobsEnv(t)
	name := e.pipelineName(t)
	e.b.CreateTopic(t, name, 4) // to read it while produce runs
	type result struct {
		code      int
		out, errs string
	}
	ch := make(chan result, 1)
	go func() {
		var r result
		r.code, r.out, r.errs = e.run(t, "good\nbad\n", "produce", "--pipeline", name, "--wait", "--wait-timeout", "1m")
		ch <- r
	}()
	var es []jobs.Event
	for _, rec := range e.b.Read(t, name, 2, time.Minute) {
		id := rec.Headers[filters.HeaderJob]
		es = append(es, cev(id, 1, "", jobs.Done, 1))
		if string(rec.Value) == "bad" {
			es = append(es, cev(id, 2, "0", jobs.Quarantined, 0))
		} else {
			es = append(es, cev(id, 2, "0", jobs.Done, 1))
		}
	}
	e.events(t, name, es...)
	r := <-ch
	if r.code != 1 || !strings.HasPrefix(r.out, "sent 2 records to "+name+"\n") || strings.Count(r.out, "  succeeded  outputs 1") != 1 ||
		strings.Count(r.out, "  failed     outputs 0, dropped 0, quarantined 1") != 1 || !strings.Contains(r.out, "    price at ") ||
		!strings.HasSuffix(r.errs, "\n1 job failed\n") {
		t.Fatalf("produce --wait: exit %d\n%s%s\nwant exit 1, one job succeeded, one failed with its error", r.code, r.out, r.errs)
	}

	// Nothing settles the jobs: the timeout passes.
	code, out, errs := e.run(t, "x\n", "produce", "--pipeline", name, "--wait", "--wait-timeout", "200ms")
	if code != 1 || !strings.Contains(out, "sent 1 record") || !strings.Contains(errs, "1 job did not finish: --wait-timeout 200ms passed") {
		t.Fatalf("produce --wait timing out: exit %d\n%s%s", code, out, errs)
	}
}
