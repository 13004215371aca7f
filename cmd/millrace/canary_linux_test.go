package main_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/millrace/millrace/jobs"
	"github.com/millrace/millrace/testkit"
)

// exposures is everything millrace showed in a test: output, logs, HTTP
// answers, files it wrote. None may hold the canary.
type exposures struct {
	t      *testing.T
	canary string
	seen   []exposure
}

type exposure struct{ what, text string }

func (e *exposures) add(what, text string) { e.seen = append(e.seen, exposure{what, text}) }

func (e *exposures) addRan(r ran) {
	what := "millrace " + strings.Join(r.args, " ")
	e.add(what+" (stdout)", r.stdout)
	e.add(what+" (stderr)", r.stderr)
}

func (e *exposures) addAnswer(what string, a answer) {
	var h strings.Builder
	_ = a.header.Write(&h)
	e.add(what+" (headers)", h.String())
	e.add(what+" (body)", a.body)
}

// check fails the test for each exposure that holds the canary, as it is,
// in base64 or its first half, and returns how many bytes it looked at.
func (e *exposures) check() int {
	e.t.Helper()
	forms := map[string]string{
		"the password":                   e.canary,
		"the password in base64":         base64.StdEncoding.EncodeToString([]byte(e.canary)),
		"the password in base64url":      base64.RawURLEncoding.EncodeToString([]byte(e.canary)),
		"the first half of the password": e.canary[:len(e.canary)/2],
	}
	n := 0
	for _, x := range e.seen {
		n += len(x.text)
		// Payloads in JSON may be base64 ("value_base64"): look inside.
		for _, m := range base64Run.FindAllString(x.text, -1) {
			if d, err := base64.StdEncoding.DecodeString(m); err == nil {
				x.text += "\n[decoded base64] " + string(d)
			}
		}
		for form, s := range forms {
			if i := strings.Index(x.text, s); i >= 0 {
				e.t.Errorf("%s shows %s: …%s…", x.what, form, x.text[max(0, i-200):min(len(x.text), i+len(s)+50)])
				break
			}
		}
	}
	return n
}

// base64Run is a run of standard base64 long enough to hide a password.
var base64Run = regexp.MustCompile(`[A-Za-z0-9+/]{16,}={0,2}`)

// cmdlinesHolding returns the command lines, of the processes this user
// can see, that hold s.
func cmdlinesHolding(t *testing.T, s string) []string {
	t.Helper()
	files, err := filepath.Glob("/proc/[0-9]*/cmdline")
	if err != nil {
		t.Fatal(err)
	}
	var found []string
	for _, f := range files {
		b, err := os.ReadFile(f) // gone already: not readable
		if err == nil && bytes.Contains(b, []byte(s)) {
			found = append(found, string(bytes.ReplaceAll(b, []byte{0}, []byte{' '})))
		}
	}
	return found
}

// TestSecurity_the_password_shows_nowhere is issue 18's canary test. The
// secure embedded broker's SCRAM password (24 random hex digits) is in the
// environment as $KAFKA_PASSWORD (which the file's broker block reads) and
// $MILLRACE_SASL_PASSWORD (which client commands read). Every command runs
// at --log-level debug, on a pipeline that quarantines records (a jq error,
// an exec command that fails with its environment on stderr) and whose
// exec stage prints its environment into every output record; then the
// output and logs of validate (of a good file and of one with problems in
// the broker block), run, produce --wait, tail, quarantine ls and show,
// replay topic, quarantine and offsets (dry runs and executed), jobs ls and
// status, schedules ls and trigger, deploy render (to stdout and to files),
// the admin endpoints and the HTTP API of the running process (bodies and
// headers), the command lines of every process, and a run with a wrong
// password: none shows the password. Each step also checks it did what it
// should, so that the test cannot pass on nothing.
func TestSecurity_the_password_shows_nowhere(t *testing.T) {
	b := testkit.SecureEmbedded(t)
	canary := b.Security.SASL.Password
	if len(canary) < 16 {
		t.Fatalf("the canary %q is too short to be unique", canary)
	}
	shown := &exposures{t: t, canary: canary}
	dir := t.TempDir()
	name := "canary-" + testkit.Unique()
	adminToken := "admin-token-" + testkit.Unique()
	env := []string{"KAFKA_PASSWORD=" + canary, "MILLRACE_SASL_PASSWORD=" + canary, "MILLRACE_ADMIN_TOKEN=" + adminToken}
	pipelines := fmt.Sprintf(`pipelines:
  - name: %[1]s
    input: %[1]s.in
    output: %[1]s.out
    partitions: 2
    results:
      reply_topics: [%[1]s.replies]
    schedules:
      - {name: hourly, cron: "0 * * * *", overlap: allow}
    stages:
      - name: check
        filter: jq
        config: {program: 'if .poison then error("poison \(.n)") else . end | .jq_env = env'}
        retry: {attempts: 1}
      - name: shell
        filter: exec
        config:
          command: [sh, -c, 'r=$(cat); case "$r" in *envfail*) env >&2; exit 65;; esac; env; printf "%%s" "$r"']
`, name)
	writeFile(t, dir, "pipelines.yaml", "version: 1\n"+secureBroker(b, b.Security.TLS.CAFile)+pipelines)
	// Problems in the broker block, each about a value from the environment.
	writeFile(t, dir, "broken.yaml", fmt.Sprintf(`version: 1
broker:
  brokers: ["${KAFKA_PASSWORD}"]
  compression: "${KAFKA_PASSWORD}"
  tls: {ca_file: "/nonexistent/${KAFKA_PASSWORD}.pem"}
  sasl: {mechanism: "${KAFKA_PASSWORD}", username: millrace, password: "${KAFKA_PASSWORD}", extra: "${KAFKA_PASSWORD}"}
%s`, pipelines))
	mill := func(stdin string, args ...string) ran {
		t.Helper()
		r := cliEnv(t, dir, env, stdin, append(args, "--log-level", "debug")...)
		shown.addRan(r)
		return r
	}
	must := func(r ran, code int, want ...string) {
		t.Helper()
		if r.code != code {
			t.Fatalf("want exit %d\n%s", code, r)
		}
		for _, w := range want {
			if !strings.Contains(r.stdout+r.stderr, w) {
				t.Fatalf("want %q in the output\n%s", w, r)
			}
		}
	}

	// validate: a good file, and one with problems in the broker block.
	must(mill("", "validate"), 0, "pipelines.yaml: ok")
	must(mill("", "validate", "-f", "broken.yaml"), 1, "broken.yaml: 5 problems", "/nonexistent/${KAFKA_PASSWORD}.pem", "${KAFKA_PASSWORD}")

	// run, with the API and the admin endpoints.
	run, runOut := startCapture(t, "run", dir, env, "run", "--log-level", "debug", "--admin-addr", "127.0.0.1:0", "--api-addr", "127.0.0.1:0")
	admin, api := "http://"+adminAddr(t, run), "http://"+apiAddr(t, run)
	run.waitLog("stage ready", 2, time.Minute)

	// produce --wait: five records go through, one fails in jq and one in
	// exec; both are quarantined.
	var lines strings.Builder
	for i := 1; i <= 5; i++ {
		fmt.Fprintf(&lines, `{"n":%d,"k":"k%d"}`+"\n", i, i)
	}
	lines.WriteString(`{"n":6,"k":"k6","poison":true}` + "\n" + `{"n":7,"k":"k7","envfail":true}` + "\n")
	must(mill(lines.String(), "produce", "--pipeline", name, "--key-jq", ".k", "--wait", "--wait-timeout", "90s"),
		1, "succeeded", "failed", "poison 6", "exited with status 65")

	out := mill("", "tail", name+".out", "--from-beginning", "--exit", "--json")
	must(out, 0)
	if got := strings.Count(out.stdout, "\n"); got != 5 {
		t.Fatalf("the output holds %d records, want 5\n%s", got, out)
	}
	// The exec command printed its environment into each record: PATH is
	// there, the variables holding the password are not.
	if !strings.Contains(out.stdout, "PATH=") || !strings.Contains(out.stdout, "MILLRACE_STAGE=shell") ||
		!strings.Contains(out.stdout, `jq_env`) || strings.Contains(out.stdout, "KAFKA_PASSWORD") ||
		strings.Contains(out.stdout, "MILLRACE_SASL_PASSWORD") {
		t.Fatalf("want the exec command's environment in each record, without KAFKA_PASSWORD or MILLRACE_SASL_PASSWORD:\n%s", out.stdout)
	}
	must(mill("", "tail", name+".quarantine", "--from-beginning", "--exit"), 0, "poison 6")
	must(mill("", "quarantine", "ls", "--pipeline", name), 0, "check", "shell")
	must(mill("", "quarantine", "ls", "--pipeline", name, "--json"), 0, "poison 6")
	show := mill("", "quarantine", "show", "--pipeline", name)
	must(show, 0, "poison 6", "exited with status 65", "PATH=") // the command's stderr: its environment
	must(mill("", "quarantine", "show", "--pipeline", name, "--json", "--stage", "shell"), 0, "MILLRACE_STAGE=shell")

	// jobs.
	var ls []jobs.Status
	r := mill("", "jobs", "ls", "--pipeline", name, "--json")
	must(r, 0)
	if err := json.Unmarshal([]byte(r.stdout), &ls); err != nil || len(ls) != 7 {
		t.Fatalf("jobs ls: want 7 jobs (%v)\n%s", err, r)
	}
	exitOf := func(s jobs.Status) int { // jobs status exits 1 for a failed job
		if s.State == jobs.StateFailed {
			return 1
		}
		return 0
	}
	for _, j := range ls {
		must(mill("", "jobs", "status", j.Job, "--pipeline", name, "--json"), exitOf(j), j.Job)
	}
	must(mill("", "jobs", "status", ls[0].Job), exitOf(ls[0]), ls[0].Job)

	// schedules.
	must(mill("", "schedules", "ls"), 0, name+"/hourly")
	must(mill("", "schedules", "ls", "--json"), 0, "hourly")
	must(mill("", "schedules", "trigger", name+"/hourly"), 0)

	// replay topic: into a topic of its own.
	b.CreateTopic(t, name+".copy", 1)
	must(mill("", "replay", "topic", "--from", name+".in", "--to", name+".copy", "--dry-run", "--json"), 0)
	must(mill("", "replay", "topic", "--from", name+".in", "--to", name+".copy"), 0)
	if got := len(b.ReadAll(t, name+".copy")); got < 7 {
		t.Fatalf("replay topic copied %d records, want the 7 produced and the one triggered", got)
	}
	// replay quarantine: both records go back to their stage, and fail
	// there again.
	must(mill("", "replay", "quarantine", "--pipeline", name, "--dry-run"), 0)
	r = mill("", "replay", "quarantine", "--pipeline", name, "--json")
	var rq replayJSON
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &rq) != nil || rq.Sent != 2 {
		t.Fatalf("replay quarantine: want exit 0 and 2 records sent\n%s", r)
	}
	b.Read(t, name+".quarantine", 4, time.Minute)

	// The admin endpoints and the API of the running process.
	for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
		a := call(t, "GET", admin+path, "", "Authorization", "Bearer "+adminToken)
		if a.code != http.StatusOK {
			t.Fatalf("GET %s: %d %s", path, a.code, a.body)
		}
		shown.addAnswer("admin GET "+path, a)
		if path == "/metrics" && !regexp.MustCompile(`(?m)^millrace_records_quarantined_total\{.*\} [1-9]`).MatchString(a.body) {
			t.Fatalf("/metrics counts no record quarantined:\n%s", a.body)
		}
	}
	shown.addAnswer("API GET /v1/pipelines", call(t, "GET", api+"/v1/pipelines", ""))
	sub := call(t, "POST", api+"/v1/pipelines/"+name+"/jobs", `{"n":8,"k":"k8"}`, "Content-Type", "application/json")
	shown.addAnswer("API POST a job", sub)
	status := call(t, "GET", api+"/v1/jobs/"+submitted(t, sub)+"?wait=30s", "")
	shown.addAnswer("API GET the job", status)
	var js jobs.Status
	if status.code != http.StatusOK || json.Unmarshal([]byte(status.body), &js) != nil || js.State != jobs.StateSucceeded ||
		len(js.Outputs) != 1 || !strings.Contains(string(js.Outputs[0].ValueBase64), "PATH=") {
		t.Fatalf("the job submitted over HTTP: %d %s, want it succeeded with its output (the command's environment) inline", status.code, status.body)
	}
	refused := call(t, "POST", api+"/v1/pipelines/nope/jobs", `{}`)
	shown.addAnswer("API POST to an unknown pipeline", refused)

	// Command lines: neither millrace nor what it started has the password
	// in its arguments (ps shows them to every user).
	if found := cmdlinesHolding(t, canary); len(found) > 0 {
		t.Errorf("command lines hold the password: %q", found)
	}

	// replay offsets: refused while the stage runs, then planned and
	// executed once it stopped.
	must(mill("", "replay", "offsets", "--pipeline", name, "--stage", "check", "--to-earliest", "--execute"), 1, "is running")
	run.stop(30 * time.Second)
	shown.add("run (log)", run.logText())
	shown.add("run (stdout)", runOut.String())
	if !strings.Contains(run.logText(), "level=DEBUG") {
		t.Fatalf("run logged nothing at debug level:\n%s", run.logText())
	}
	must(mill("", "replay", "offsets", "--pipeline", name, "--stage", "check", "--to-earliest"), 0)
	r = mill("", "replay", "offsets", "--pipeline", name, "--stage", "check", "--to-earliest", "--execute", "--json")
	var ro offsetsJSON
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &ro) != nil || !ro.Executed || ro.Reprocess == 0 {
		t.Fatalf("replay offsets --execute: want exit 0 and records to reprocess\n%s", r)
	}

	// deploy render: to stdout, and to files.
	must(mill("", "deploy", "render", "--image", "example.com/millrace:1", "--brokers", "kafka-0.kafka:9093"), 0, "kind: Deployment", "${KAFKA_PASSWORD}")
	rendered := filepath.Join(t.TempDir(), "k8s")
	must(mill("", "deploy", "render", "--image", "example.com/millrace:1", "--brokers", "kafka-0.kafka:9093", "--out", rendered), 0)
	files, err := filepath.Glob(filepath.Join(rendered, "*"))
	if err != nil || len(files) == 0 {
		t.Fatalf("deploy render --out wrote no files (%v)", err)
	}
	for _, f := range files {
		text, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		shown.add("deploy render: "+filepath.Base(f), string(text))
	}

	// A wrong password: refused, and shown nowhere either.
	wrong := "wrong-" + testkit.Unique()
	wrongEnv := []string{"KAFKA_PASSWORD=" + wrong, "MILLRACE_SASL_PASSWORD=" + wrong}
	for _, args := range [][]string{{"run", "--connect-timeout", "0", "--admin-addr", "off"}, {"quarantine", "ls", "--pipeline", name}} {
		r := cliEnv(t, dir, wrongEnv, "", append(args, "--log-level", "debug")...)
		shown.addRan(r)
		if r.code != 1 || !strings.Contains(r.stderr, "authentication") {
			t.Errorf("with a wrong password: want exit 1 saying the authentication failed\n%s", r)
		}
		if strings.Contains(r.stdout+r.stderr, wrong) {
			t.Errorf("with a wrong password, the output shows it\n%s", r)
		}
	}

	// Nothing millrace wrote to Kafka holds it either: the records of
	// every topic, with their keys and headers.
	topics, err := b.Client(t).Topics()
	if err != nil {
		t.Fatal(err)
	}
	for _, topic := range topics {
		var text strings.Builder
		for _, rec := range b.ReadAll(t, topic) {
			fmt.Fprintf(&text, "%s %s %v\n", rec.Key, rec.Value, rec.Headers)
		}
		shown.add("topic "+topic, text.String())
	}
	if len(topics) < 10 {
		t.Fatalf("topics: %v, want the pipeline's, the replay's and the scheduler's", topics)
	}

	n := shown.check()
	t.Logf("the password (%d characters) is in none of %d outputs, logs, HTTP answers and files (%d bytes)", len(canary), len(shown.seen), n)
}
