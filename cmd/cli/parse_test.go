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

	_ "github.com/millrace/millrace/filters/std" // the filters of the test pipelines
	"github.com/millrace/millrace/kafkaops"
)

// testPipelines is the pipelines file the parsing tests read.
const testPipelines = `version: 1
broker:
  brokers: [file-broker:9092]
  client_id: from-file
defaults: {partitions: 4, replication_factor: 3}
pipelines:
  - name: orders
    input: orders
    output: orders.done
    priority: [{topic: orders.high, weight: 8, name: high}]
    results: {}
    stages:
      - {name: check, filter: jq, config: {program: .}}
      - {name: price, filter: jq, config: {program: .}}
  - name: other
    input: other.in
    partitions: 2
    results: {}
    stages:
      - {name: only, filter: log}
`

// parsed is what a command line parses into: the options a command would
// run with, or its exit code and stderr line.
type parsed struct {
	cmd  string
	opts any
	code int
	msg  string
}

// parseArgs runs args (with -f the test pipelines file) up to the Kafka
// call, in a directory holding that file.
func parseArgs(t *testing.T, stdin string, args ...string) parsed {
	t.Helper()
	return parseArgsOf(t, testPipelines, stdin, args...)
}

// parseArgsOf is parseArgs with source as the pipelines file.
func parseArgsOf(t *testing.T, source, stdin string, args ...string) parsed {
	t.Helper()
	dir := t.TempDir()
	file := filepath.Join(dir, "pipelines.yaml")
	if err := os.WriteFile(file, []byte(source), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	var p parsed
	g := &globals{stdin: strings.NewReader(stdin), stdout: &out, stderr: &errb}
	g.parsed = func(cmd *cobra.Command, opts any) error {
		p.cmd, p.opts = cmd.CommandPath(), opts
		return nil
	}
	p.code, p.msg = g.execute(context.Background(), append([]string{"-f", file}, args...))
	if errb.Len() > 0 {
		p.msg = errb.String() + p.msg
	}
	return p
}

func TestParse_flags_become_the_options_of_the_one_call(t *testing.T) {
	t.Setenv("MILLRACE_BROKERS", "")
	cluster := func(brokers, clientID string, timeout time.Duration) kafkaops.Cluster {
		return kafkaops.Cluster{Brokers: strings.Split(brokers, ","), ClientID: clientID, ConnectTimeout: timeout}
	}
	since := time.Date(2026, 11, 20, 14, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		args []string
		want string // fmt %+v of the options, functions and loggers left out
	}{
		{"tail defaults: the file's brokers, from the end, for ever", []string{"tail", "orders.done"},
			fmt.Sprintf("%+v", kafkaops.TailOptions{Cluster: cluster("file-broker:9092", "from-file", 10*time.Second), Topic: "orders.done"})},
		{"tail --brokers wins, -n, --exit, --from-beginning", []string{"tail", "t", "--brokers", "a:1,b:2", "-n", "3", "--exit", "--from-beginning", "--connect-timeout", "0"},
			fmt.Sprintf("%+v", kafkaops.TailOptions{Cluster: cluster("a:1,b:2", "from-file", 0), Topic: "t", FromBeginning: true, Limit: 3, StopAtEnd: true})},
		{"quarantine ls", []string{"quarantine", "ls", "--pipeline", "orders", "--stage", "gone", "--match", "time.?out"},
			fmt.Sprintf("%+v", kafkaops.QuarantineOptions{Cluster: cluster("file-broker:9092", "from-file", 10*time.Second),
				Topic: "orders.quarantine", Select: kafkaops.QuarantineSelection{Stage: "gone"}, Replayed: "orders.quarantine.replayed"})},
		{"replay offsets --shift-by", []string{"replay", "offsets", "--pipeline", "orders", "--stage", "check", "--shift-by", "-5", "--execute"},
			fmt.Sprintf("%+v", kafkaops.ResetOptions{Cluster: cluster("file-broker:9092", "from-file", 10*time.Second),
				Group: "millrace.orders.check", Topics: []string{"orders.high", "orders"},
				Spec: kafkaops.ResetSpec{Kind: kafkaops.ShiftBy, Shift: -5}, Execute: true})},
		{"replay offsets --to-time in UTC", []string{"replay", "offsets", "--pipeline", "orders", "--stage", "price", "--to-time", "2026-11-20T14:00:00"},
			fmt.Sprintf("%+v", kafkaops.ResetOptions{Cluster: cluster("file-broker:9092", "from-file", 10*time.Second),
				Group: "millrace.orders.price", Topics: []string{"orders.price"}, Spec: kafkaops.ResetSpec{Kind: kafkaops.ToTime, Time: since}})},
		{"replay topic", []string{"replay", "topic", "--from", "a", "--to", "b", "--since", "2026-11-20T15:00:00+01:00", "--until", "2026-11-21", "--rate", "50/s", "--dry-run"},
			fmt.Sprintf("%+v", kafkaops.CopyOptions{Cluster: cluster("file-broker:9092", "from-file", 10*time.Second), From: "a", To: "b",
				Since: time.Date(2026, 11, 20, 15, 0, 0, 0, time.FixedZone("", 3600)), Until: time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC), Rate: 50, DryRun: true})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := parseArgs(t, "", tt.args...)
			if p.code != 0 {
				t.Fatalf("exit %d: %s", p.code, p.msg)
			}
			var got string
			switch o := p.opts.(type) {
			case tailOptions:
				o.Record = nil
				got = fmt.Sprintf("%+v", o.TailOptions)
			case quarantineOptions:
				o.Select.Error = nil
				got = fmt.Sprintf("%+v", o.QuarantineOptions)
			case offsetsOptions:
				got = fmt.Sprintf("%+v", o.ResetOptions)
			case copyOptions:
				got = fmt.Sprintf("%+v", o.CopyOptions)
			default:
				t.Fatalf("options %T", p.opts)
			}
			if got != tt.want {
				t.Errorf("options\n got  %s\n want %s", got, tt.want)
			}
		})
	}
}

func TestParse_produce_options(t *testing.T) {
	t.Setenv("MILLRACE_BROKERS", "env-broker:9092")
	p := parseArgs(t, "{\"c\":\"x\"}\n", "produce", "--pipeline", "orders", "--priority", "high", "--key-jq", ".c", "-H", "a=1", "-H", "b=x=y")
	o, ok := p.opts.(produceOptions)
	if p.code != 0 || !ok {
		t.Fatalf("exit %d, options %T: %s", p.code, p.opts, p.msg)
	}
	if o.Topic.Name != "orders.high" || o.Topic.Partitions != 4 || o.ReplicationFactor != 3 ||
		fmt.Sprint(o.Brokers) != "[env-broker:9092]" || o.ClientID != "from-file" {
		t.Errorf("produce options %+v: want orders.high (4 partitions, 3 replicas) on $MILLRACE_BROKERS as from-file", o)
	}
	if fmt.Sprintf("%s", o.Headers) != "[{a 1} {b x=y}]" {
		t.Errorf("headers %s, want a=1, b=x=y", o.Headers)
	}
	if k, err := o.KeyOf([]byte(`{"c":"x"}`)); err != nil || string(k) != "x" {
		t.Errorf("--key-jq .c gives %q, %v", k, err)
	}
	p = parseArgs(t, "", "produce", "--pipeline", "other")
	if o := p.opts.(produceOptions); o.Topic.Name != "other.in" || o.Topic.Partitions != 2 || o.KeyOf != nil || len(o.Headers) != 0 {
		t.Errorf("produce --pipeline other: %+v, want other.in with 2 partitions, no key, no headers", o)
	}
}

func TestParse_run_and_broker_options(t *testing.T) {
	t.Setenv("MILLRACE_BROKERS", "")
	p := parseArgs(t, "", "run", "--stage", "orders/price", "--stage", "other", "--embedded-port", "0", "--stop-timeout", "1m")
	o, ok := p.opts.(runOptions)
	if p.code != 0 || !ok {
		t.Fatalf("run: exit %d, %T: %s", p.code, p.opts, p.msg)
	}
	var ids []string
	for _, s := range o.engine.Stages {
		ids = append(ids, s.ID())
	}
	if fmt.Sprint(ids) != "[orders/price other/only]" || o.engine.StopTimeout != time.Minute || o.embedded != nil ||
		fmt.Sprint(o.engine.Brokers) != "[file-broker:9092]" || o.engine.ConnectTimeout != 30*time.Second {
		t.Errorf("run options %+v: want stages orders/price and other/only on the file's broker", o.engine)
	}
	p = parseArgs(t, "", "run", "--connect-timeout", "0", "--brokers", "")
	// An empty --brokers is no brokers: the file's.
	if o := p.opts.(runOptions); o.engine.ConnectTimeout >= 0 {
		t.Errorf("--connect-timeout 0 gives %s, want a negative (wait for ever)", o.engine.ConnectTimeout)
	}
	if o.api.addr != "" {
		t.Errorf("run serves the API at %q without --api-addr, want not at all", o.api.addr)
	}
	p = parseArgs(t, "", "run", "--api-addr", "127.0.0.1:0")
	if o := p.opts.(runOptions); o.api.addr != "127.0.0.1:0" || o.api.plan == nil {
		t.Errorf("run --api-addr: %+v", o.api)
	}
	p = parseArgs(t, "", "serve")
	if s, ok := p.opts.(serveOptions); p.code != 0 || !ok || s.api.addr != "127.0.0.1:8080" ||
		fmt.Sprint(s.cluster.Brokers) != "[file-broker:9092]" || s.cluster.ConnectTimeout != 30*time.Second || s.stopTimeout != 30*time.Second {
		t.Errorf("serve: exit %d %+v %s, want the default address on the file's broker", p.code, p.opts, p.msg)
	}
	p = parseArgs(t, "", "broker", "--port", "0", "--data-dir", "d")
	if b, ok := p.opts.(brokerOptions); p.code != 0 || !ok || b.broker.Port != 0 || b.broker.DataDir != "d" || b.admin.addr != "127.0.0.1:9464" {
		t.Errorf("broker: exit %d %+v", p.code, p.opts)
	}
}

// TestParse_usage_errors_exit_2_naming_the_flag: every mistake in how a
// command is called exits 2 with one line that names the flag (or
// argument) as given, before any broker is contacted.
func TestParse_usage_errors_exit_2_naming_the_flag(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"produce", "--pipeline", "nope"}, `--pipeline: no pipeline "nope"`},
		{[]string{"produce"}, "--pipeline is required"},
		{[]string{"produce", "--pipeline", "orders", "--key", "k", "--key-jq", ".k"}, "--key or --key-jq"},
		{[]string{"produce", "--pipeline", "orders", "--key-jq", ".["}, "--key-jq"},
		{[]string{"produce", "--pipeline", "orders", "-H", "novalue"}, `--header "novalue"`},
		{[]string{"produce", "--pipeline", "orders", "-H", "millrace-job=x"}, "--header millrace-job"},
		{[]string{"produce", "--pipeline", "orders", "--priority", "urgent"}, `--priority "urgent"`},
		{[]string{"run", "--stage", "nope/x"}, `--stage: no stage "nope/x"`},
		{[]string{"run", "--embedded-port", "99999"}, "--embedded-port 99999"},
		{[]string{"run", "--stop-timeout", "-1s"}, "--stop-timeout -1s"},
		{[]string{"run", "--connect-timeout", "soon"}, `"--connect-timeout"`},
		{[]string{"broker", "--port", "-2"}, "--port -2"},
		{[]string{"serve", "--addr", "0.0.0.0:8080"}, "--addr 0.0.0.0:8080: an API address other hosts can reach needs api.tokens"},
		{[]string{"serve", "--addr", "8080"}, "--addr 8080: want host:port"},
		{[]string{"serve", "--stop-timeout", "-1s"}, "--stop-timeout -1s"},
		{[]string{"run", "--api-addr", "0.0.0.0:8080"}, "--api-addr 0.0.0.0:8080: an API address other hosts can reach needs api.tokens"},
		{[]string{"validate", "--log-level", "loud"}, `--log-level "loud"`},
		{[]string{"filters", "list", "--log-format", "xml"}, `--log-format "xml"`},
		{[]string{"filters", "docs", "teleport"}, `no filter "teleport" (known filters: exec, jq, log) (see 'millrace filters docs --help')`},
		{[]string{"filters"}, "filters needs a subcommand"},
		{[]string{"tail"}, "tail takes one TOPIC"},
		{[]string{"tail", "t", "-n", "-1"}, "--limit -1"},
		{[]string{"tail", "t", "--connect-timeout", "-1s"}, "--connect-timeout -1s"},
		{[]string{"quarantine", "ls", "--pipeline", "nope"}, `--pipeline: no pipeline "nope"`},
		{[]string{"quarantine", "show", "--pipeline", "orders", "--match", "("}, `--match "("`},
		{[]string{"quarantine"}, "quarantine needs a subcommand"},
		{[]string{"replay", "offsets", "--pipeline", "orders", "--stage", "nope", "--to-earliest"}, `--stage: pipeline "orders" has no stage "nope"`},
		{[]string{"replay", "offsets", "--pipeline", "orders"}, "--stage is required"},
		{[]string{"replay", "offsets"}, "--pipeline and --stage are required"},
		{[]string{"replay", "offsets", "--pipeline", "orders", "--stage", "check"}, "give exactly one of --to-time"},
		{[]string{"replay", "offsets", "--pipeline", "orders", "--stage", "check", "--to-earliest", "--to-latest"}, "give exactly one of"},
		{[]string{"replay", "offsets", "--pipeline", "orders", "--stage", "check", "--to-time", "yesterday"}, `--to-time "yesterday"`},
		{[]string{"replay", "quarantine", "--pipeline", "orders", "--stage", "nope"}, `--stage: pipeline "orders" has no stage "nope"`},
		{[]string{"replay", "quarantine", "--pipeline", "orders", "--rate", "fast"}, `--rate "fast"`},
		{[]string{"replay", "quarantine", "--pipeline", "orders", "--max-replays", "0"}, "--max-replays 0"},
		{[]string{"replay", "quarantine", "--pipeline", "orders", "--since", "2026-01-02", "--until", "2026-01-01"}, "--until must be after --since"},
		{[]string{"replay", "quarantine", "--pipeline", "orders", "--since", "1h", "--until", "2h"}, "--until must be after --since"},
		{[]string{"replay", "quarantine", "--pipeline", "orders", "--since", "-1h"}, "--since -1h: want a duration ago more than 0"},
		{[]string{"replay", "quarantine", "--pipeline", "orders", "--until", "yesterday"}, `--until "yesterday": want a duration ago, like 1h or 30m, or a time`},
		{[]string{"replay", "topic", "--from", "a", "--to", "b", "--since", "soon"}, `--since "soon": want a duration ago`},
		{[]string{"replay", "topic", "--from", "a", "--to", "a"}, "--from and --to are the same topic"},
		{[]string{"replay", "topic", "--from", "a"}, "--to is required"},
		{[]string{"replay"}, "replay needs a subcommand"},
		{[]string{"validate", "extra"}, `unknown command "extra"`},
		{[]string{"validate", "my.yaml"}, "validate takes no arguments; to read my.yaml, use -f my.yaml"},
		{[]string{"replay", "quarantine", "--pipeline", "orders", "jobs.YML"}, "replay quarantine takes no arguments; to read jobs.YML, use -f jobs.YML"},
		{[]string{"deploy", "my.yaml"}, `unknown command "my.yaml" for "millrace deploy"`},
		{[]string{"completion", "nosh"}, `unknown shell "nosh": completion knows bash, fish, powershell or zsh`},
		{[]string{"completion"}, "completion needs a shell: bash, fish, powershell or zsh"},
		{[]string{"tial"}, `unknown command "tial" for "millrace"; did you mean tail?`},
		{[]string{"tail", "t", "--bogus"}, "unknown flag: --bogus"},
		{[]string{"tail", "t", "-n", "x"}, `invalid argument "x" for "-n, --limit" flag`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			p := parseArgs(t, "", tt.args...)
			if p.code != exitUsage || strings.Count(p.msg, "\n") != 0 || !strings.HasPrefix(p.msg, "millrace: ") ||
				!strings.Contains(p.msg, tt.want) || !strings.HasSuffix(p.msg, " --help')") || strings.Count(p.msg, "(see ") != 1 {
				t.Fatalf("exit %d, message %q; want exit 2 and one line holding %q and pointing at --help, once", p.code, p.msg, tt.want)
			}
			if p.opts != nil {
				t.Fatalf("bad usage reached the call with %+v", p.opts)
			}
		})
	}
}

// completion with a shell it knows prints the script.
func TestParse_completion_of_a_known_shell_prints_its_script(t *testing.T) {
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"completion", "bash"}, strings.NewReader(""), &out, &errb)
	if code != 0 || !strings.Contains(out.String(), "bash completion") || errb.Len() != 0 {
		t.Errorf("completion bash: exit %d, stderr %q, stdout %.60q; want 0 and the script", code, errb.String(), out.String())
	}
}

// An argument that is a file, whatever its name, gets the hint to name it
// with -f; a pipelines file that is not there hints at -f too (exit 1).
func TestParse_the_pipelines_file_is_named_with_f(t *testing.T) {
	t.Chdir(t.TempDir())
	if err := os.WriteFile("jobs.conf", []byte(testPipelines), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"run", "jobs.conf"}, {"validate"}, {"deploy", "render", "--image", "m:1"}} {
		var out, errb bytes.Buffer
		code := run(context.Background(), args, strings.NewReader(""), &out, &errb)
		want, wantCode := "millrace: read pipelines file: open pipelines.yaml: no such file or directory "+
			"(-f FILE names the pipelines file; the default is pipelines.yaml)\n", exitFailure
		if args[0] == "run" {
			want, wantCode = "millrace: run takes no arguments; to read jobs.conf, use -f jobs.conf (see 'millrace run --help')\n", exitUsage
		}
		if code != wantCode || errb.String() != want {
			t.Errorf("%s: exit %d, stderr %q; want exit %d, %q", strings.Join(args, " "), code, errb.String(), wantCode, want)
		}
	}
}

// replay quarantine and replay topic take --since and --until as a
// duration ago, as jobs ls takes --since.
func TestParse_replay_since_and_until_take_a_duration_ago(t *testing.T) {
	t.Setenv("MILLRACE_BROKERS", "")
	near := func(got time.Time, ago time.Duration) bool {
		want := time.Now().Add(-ago)
		return got.After(want.Add(-time.Minute)) && !got.After(want)
	}
	p := parseArgs(t, "", "replay", "quarantine", "--pipeline", "orders", "--since", "2h", "--until", "30m")
	o, ok := p.opts.(replayQuarantineOptions)
	if p.code != 0 || !ok || !near(o.Select.Since, 2*time.Hour) || !near(o.Select.Until, 30*time.Minute) {
		t.Fatalf("replay quarantine --since 2h --until 30m: exit %d: %s: %+v; want 2h and 30m before now", p.code, p.msg, o.Select)
	}
	p = parseArgs(t, "", "replay", "topic", "--from", "a", "--to", "b", "--since", "90m")
	c, ok := p.opts.(copyOptions)
	if p.code != 0 || !ok || !near(c.Since, 90*time.Minute) || !c.Until.IsZero() {
		t.Fatalf("replay topic --since 90m: exit %d: %s: since %s, until %s; want 90m before now, no end", p.code, p.msg, c.Since, c.Until)
	}
}

// The root help lists every environment variable millrace reads.
func TestRootHelp_lists_every_environment_variable(t *testing.T) {
	long := newRoot(&globals{}).Long
	for _, env := range []string{"MILLRACE_BROKERS", envTLS, envTLSCAFile, envTLSCertFile, envTLSKeyFile, envTLSServerName,
		envTLSInsecure, envSASLMechanism, envSASLUsername, envSASLPassword, adminTokenEnv, "MILLRACE_INSTANCE_ID"} {
		if !strings.Contains(long, env) {
			t.Errorf("millrace --help does not name $%s", env)
		}
	}
}

// The connect timeout's error counts its attempts in words that agree.
func TestParse_a_broker_that_never_answers_is_one_attempt_not_attempts(t *testing.T) {
	t.Chdir(t.TempDir())
	t.Setenv("MILLRACE_BROKERS", "")
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"tail", "t", "--brokers", "127.0.0.1:1", "--connect-timeout", "100ms"},
		strings.NewReader(""), &out, &errb)
	if code != exitFailure || !strings.Contains(errb.String(), "cannot reach Kafka at 127.0.0.1:1") ||
		!strings.Contains(errb.String(), " (1 attempt): ") {
		t.Errorf("exit %d, stderr %q; want exit 1 and (1 attempt)", code, errb.String())
	}
}

// quarantine ls/show take a stage not in the file (a removed stage keeps
// its records in quarantine), but say so: a typo would otherwise read as
// nothing quarantined.
func TestParse_quarantine_notes_a_stage_not_in_the_file(t *testing.T) {
	t.Setenv("MILLRACE_BROKERS", "")
	for _, cmd := range []string{"ls", "show"} {
		p := parseArgs(t, "", "quarantine", cmd, "--pipeline", "orders", "--stage", "nope")
		if p.code != 0 || !strings.Contains(p.msg, `note: pipeline "orders" has no stage "nope" (stages: `) {
			t.Errorf("quarantine %s --stage nope: exit %d, %q; want exit 0 and a note naming the pipeline's stages", cmd, p.code, p.msg)
		}
		if p := parseArgs(t, "", "quarantine", cmd, "--pipeline", "orders", "--stage", "check"); strings.Contains(p.msg, "note:") {
			t.Errorf("quarantine %s --stage check (in the file) notes %q", cmd, p.msg)
		}
	}
}
