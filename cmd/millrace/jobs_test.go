package main_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/millrace/millrace/jobs"
	"github.com/millrace/millrace/testkit"
)

// resultsPipeline is a 3-stage pipeline with results: stage one fans a
// job out into its items, stage two quarantines poison items (at the first
// failure) and drops the ones marked drop, stage three marks them done.
func resultsPipeline(name, extra string) string {
	return fmt.Sprintf(`version: 1
pipelines:
  - name: %[1]s
    input: %[1]s.in
    output: %[1]s.out
    partitions: 4
    results:
      reply_topics: [%[1]s.replies]
%[2]s
    stages:
      - {name: one, filter: jq, config: {program: '.items[]'}}
      - name: two
        filter: jq
        config: {program: 'if .poison then error("poison item \(.n)") else . end | select(.drop | not)'}
        retry: {attempts: 1}
      - {name: three, filter: jq, config: {program: '.done = true'}}
`, name, extra)
}

// jobsLs is `millrace jobs ls --json` of pipeline name, by job id.
func jobsLs(t *testing.T, dir, brokers, name string) map[string]jobs.Status {
	t.Helper()
	out, stderr, code := cli(t, dir, "", "jobs", "ls", "--brokers", brokers, "--pipeline", name, "--json", "--limit", "0")
	if code != 0 {
		t.Fatalf("jobs ls: exit %d\n%s%s", code, out, stderr)
	}
	var ss []jobs.Status
	if err := json.Unmarshal([]byte(out), &ss); err != nil {
		t.Fatalf("jobs ls --json: %v\n%s", err, out)
	}
	byID := map[string]jobs.Status{}
	for _, s := range ss {
		if _, dup := byID[s.Job]; dup {
			t.Fatalf("jobs ls lists job %s twice", s.Job)
		}
		byID[s.Job] = s
	}
	return byID
}

// The first acceptance line: a job that fans out into 3 records,
// one dropped and one quarantined at stage 2 of 3, is failed with counts
// {outputs 1, dropped 1, quarantined 1} and the error; one whose 3 records
// all succeed is succeeded with outputs 3. `produce --wait` exits 1 on
// the failing one and prints the quarantine error. A reply-to topic in the
// allowlist gets one reply keyed by the correlation id; one that is not
// gets nothing, and its job still runs.
func TestJobs_status_of_fanned_out_jobs_replies_and_produce_wait(t *testing.T) {
	testkit.ForEachBackend(t, func(t *testing.T, b testkit.Backend) {
		dir := t.TempDir()
		name := "jobs-" + testkit.Unique()
		brokers := strings.Join(b.Brokers, ",")
		writeFile(t, dir, "pipelines.yaml", resultsPipeline(name, ""))
		b.CreateTopic(t, name+".elsewhere", 1)
		run := start(t, "run", dir, nil, "run", "--brokers", brokers)
		run.waitLog("stage ready", 3, time.Minute)

		failing := `{"items":[{"n":1},{"n":2,"drop":true},{"n":3,"poison":true}]}`
		out, stderr, code := cli(t, dir, failing+"\n", "produce", "--brokers", brokers, "--pipeline", name, "--wait", "--wait-timeout", "90s")
		if code != 1 || !strings.Contains(out+stderr, "poison item 3") {
			t.Fatalf("produce --wait of a failing job: exit %d, want 1 and the quarantine error\n%s%s", code, out, stderr)
		}
		good := `{"items":[{"n":1},{"n":2},{"n":3}]}`
		out, stderr, code = cli(t, dir, good+"\n", "produce", "--brokers", brokers, "--pipeline", name, "--wait", "--wait-timeout", "90s",
			"-H", "millrace-reply-to="+name+".replies", "-H", "millrace-correlation-id=c-good")
		if code != 0 || !strings.Contains(out+stderr, "succeeded") {
			t.Fatalf("produce --wait of a good job: exit %d, want 0 and succeeded\n%s%s", code, out, stderr)
		}
		out, stderr, code = cli(t, dir, good+"\n", "produce", "--brokers", brokers, "--pipeline", name, "--wait", "--wait-timeout", "90s",
			"-H", "millrace-reply-to="+name+".elsewhere", "-H", "millrace-correlation-id=c-refused")
		if code != 0 {
			t.Fatalf("produce --wait of a job whose reply topic is refused: exit %d, want 0 (the job runs)\n%s%s", code, out, stderr)
		}
		// produce --wait returns when the events say the jobs finished;
		// the folder replies on its own time: wait for its counts.
		addr := adminAddr(t, run)
		replies := func(result string) float64 {
			return sumOf(scrape(t, addr), "millrace_replies_total", map[string]string{"pipeline": name, "result": result})
		}
		testkit.Eventually(t, time.Minute, func() bool { return replies("sent") == 1 && replies("refused") == 1 },
			"the folder did not send one reply and refuse one")
		fams := scrape(t, addr)
		for state, want := range map[string]float64{"failed": 1, "succeeded": 2} {
			if got := sumOf(fams, "millrace_jobs_finished_total", map[string]string{"pipeline": name, "status": state}); got != want {
				t.Errorf("millrace_jobs_finished_total{status=%q} = %v, want %v", state, got, want)
			}
		}

		ss := jobsLs(t, dir, brokers, name)
		var failed, succeeded []jobs.Status
		for _, s := range ss {
			switch s.State {
			case jobs.StateFailed:
				failed = append(failed, s)
			case jobs.StateSucceeded:
				succeeded = append(succeeded, s)
			}
		}
		if len(failed) != 1 || len(succeeded) != 2 || len(ss) != 3 {
			t.Fatalf("jobs ls: %d failed, %d succeeded of %d, want 1, 2 of 3: %+v", len(failed), len(succeeded), len(ss), ss)
		}
		if f := failed[0]; f.Counts != (jobs.Counts{Outputs: 1, Dropped: 1, Quarantined: 1}) || len(f.Errors) != 1 ||
			!strings.Contains(f.Errors[0].Error, "poison item 3") || f.Errors[0].Stage != "two" {
			t.Errorf("the failing job: %+v, want counts {1 1 1} and the error of stage two", f)
		}
		for _, s := range succeeded {
			if s.Counts != (jobs.Counts{Outputs: 3}) || len(s.Results) != 3 {
				t.Errorf("a good job: %+v, want outputs 3 with their places", s)
			}
		}

		recs := b.ReadAll(t, name+".replies")
		var reply jobs.Status
		if len(recs) != 1 || string(recs[0].Key) != "c-good" || json.Unmarshal(recs[0].Value, &reply) != nil ||
			reply.State != jobs.StateSucceeded || len(reply.Outputs) != 3 || reply.CorrelationID != "c-good" {
			t.Fatalf("replies %+v, want one keyed c-good: succeeded, with its 3 outputs inline", recs)
		}
		if got := b.ReadAll(t, name+".elsewhere"); len(got) != 0 {
			t.Fatalf("a reply topic not in results.reply_topics got %d records, want none", len(got))
		}
		if !strings.Contains(run.logText(), "reply refused") {
			t.Errorf("the refused reply was not logged:\n%s", run.logText())
		}
		run.stop(30 * time.Second)
	})
}

// The second acceptance line: 5,000 jobs with results on, the
// stage process killed with SIGKILL mid-stream and restarted: every job
// ends succeeded exactly once in `jobs ls` with exact counts (no double
// count from the redelivered records), and the reply topic holds exactly
// one reply per job.
func TestJobs_a_kill_9_mid_stream_finishes_every_job_once(t *testing.T) {
	testkit.ForEachBackend(t, func(t *testing.T, b testkit.Backend) {
		const n = 5000
		dir := t.TempDir()
		name := "jobkill-" + testkit.Unique()
		brokers := strings.Join(b.Brokers, ",")
		writeFile(t, dir, "pipelines.yaml", resultsPipeline(name, ""))
		var in []testkit.Record
		for i := range n {
			in = append(in, testkit.Record{Key: fmt.Appendf(nil, "k%d", i%100),
				Value: fmt.Appendf(nil, `{"items":[{"n":%d},{"n":%d}]}`, 2*i, 2*i+1),
				Headers: map[string]string{"millrace-job": fmt.Sprintf("job-%d", i), "millrace-reply-to": name + ".replies",
					"millrace-correlation-id": fmt.Sprintf("c-%d", i)}})
		}
		b.CreateTopic(t, name+".in", 4)
		b.Produce(t, name+".in", in)
		outCount := func() int64 { return sum(endOffsets(b, name+".out")) }
		run1 := start(t, "run 1", dir, nil, "run", "--brokers", brokers)
		testkit.Eventually(t, 2*time.Minute, func() bool { return outCount() > 2*n/10 }, "no output before the kill")
		if err := run1.cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		<-run1.done
		killedAt := outCount()
		if killedAt >= 2*n {
			t.Fatalf("all %d outputs were out before the kill; the test proves nothing", 2*n)
		}
		run2 := start(t, "run 2", dir, nil, "run", "--brokers", brokers)
		var ss map[string]jobs.Status
		testkit.Eventually(t, 3*time.Minute, func() bool {
			ss = jobsLs(t, dir, brokers, name)
			done := 0
			for _, s := range ss {
				if s.State.Finished() {
					done++
				}
			}
			return done == n
		}, "not every job finished")
		for i := range n {
			s, ok := ss[fmt.Sprintf("job-%d", i)]
			if !ok || s.State != jobs.StateSucceeded || s.Counts != (jobs.Counts{Outputs: 2}) {
				t.Fatalf("job-%d: %+v, want succeeded with outputs 2", i, s)
			}
		}
		perJob := map[string]int{}
		testkit.Eventually(t, 2*time.Minute, func() bool {
			clear(perJob)
			for _, r := range b.ReadAll(t, name+".replies") {
				perJob[r.Headers["millrace-job"]]++
			}
			return len(perJob) == n
		}, "not every job got its reply")
		for job, c := range perJob {
			if c != 1 {
				t.Fatalf("job %s got %d replies, want exactly 1", job, c)
			}
		}
		outs := outCount()
		t.Logf("%s: killed with %d of %d outputs out; after the restart %d outputs (%d duplicates), %d jobs succeeded once, %d replies",
			b.Name, killedAt, 2*n, outs, outs-2*n, n, n)
		run2.stop(30 * time.Second)
	})
}

// callbackReceiver is a test HTTP server on loopback that answers 500 to
// the calls fail says to fail, and 200 to the others.
type callbackReceiver struct {
	mu    sync.Mutex
	calls []callbackCall
	fail  func(n int) bool // n: the 1-based number of the call
}

type callbackCall struct {
	delivery, job string
	verified      bool
	body          []byte
	code          int
}

func (cr *callbackReceiver) serve(t *testing.T, secret string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		cr.mu.Lock()
		defer cr.mu.Unlock()
		c := callbackCall{delivery: r.Header.Get("X-Millrace-Delivery"), job: r.Header.Get("X-Millrace-Job"), body: body,
			verified: jobs.VerifySignature([]byte(secret), body, r.Header.Get("X-Millrace-Signature")), code: http.StatusOK}
		if cr.fail(len(cr.calls) + 1) {
			c.code = http.StatusInternalServerError
		}
		cr.calls = append(cr.calls, c)
		w.WriteHeader(c.code)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func (cr *callbackReceiver) snapshot() []callbackCall {
	cr.mu.Lock()
	defer cr.mu.Unlock()
	return slices.Clone(cr.calls)
}

// The callback line: a receiver that fails the first 2 calls gets
// the third, its signature verified; and with the millrace process
// restarted while a callback is pending, it still arrives.
func TestJobs_callbacks_are_retried_signed_and_survive_a_restart(t *testing.T) {
	testkit.ForEachBackend(t, func(t *testing.T, b testkit.Backend) {
		const secret = "callback-s3cret"
		dir := t.TempDir()
		name := "jobcb-" + testkit.Unique()
		brokers := strings.Join(b.Brokers, ",")
		var failing atomic.Bool // while set, every call fails
		cr := &callbackReceiver{fail: func(n int) bool { return n <= 2 || failing.Load() }}
		url := cr.serve(t, secret)
		writeFile(t, dir, "pipelines.yaml", resultsPipeline(name, fmt.Sprintf(`      callback:
        url: %s/hook
        secret: ${CB_SECRET}
        timeout: 5s
        retry: {initial: 200ms, max: 1s, deadline: 5m}
      callback_hosts: [127.0.0.1]`, url)))
		env := []string{"CB_SECRET=" + secret}
		run := start(t, "run", dir, env, "run", "--brokers", brokers)
		run.waitLog("stage ready", 3, time.Minute)
		produceJob := func(id string) {
			t.Helper()
			b.Produce(t, name+".in", []testkit.Record{{Key: []byte(id), Value: []byte(`{"items":[{"n":1}]}`),
				Headers: map[string]string{"millrace-job": id}}})
		}
		produceJob("cb-1")
		var calls []callbackCall
		testkit.Eventually(t, time.Minute, func() bool { calls = cr.snapshot(); return len(calls) >= 3 }, "the callback never got a third call")
		for i, c := range calls[:3] {
			if c.delivery == "" || c.delivery != calls[0].delivery || c.job != "cb-1" || !c.verified {
				t.Fatalf("call %d: %+v, want job cb-1, the first call's delivery id and a verified signature", i+1, c)
			}
		}
		addr := adminAddr(t, run)
		callbacks := func(result string) float64 {
			return sumOf(scrape(t, addr), "millrace_callbacks_total", map[string]string{"pipeline": name, "result": result})
		}
		testkit.Eventually(t, 30*time.Second, func() bool { return callbacks("retry") == 2 && callbacks("delivered") == 1 },
			"millrace_callbacks_total did not count 2 retries and 1 delivery")
		var s jobs.Status
		if calls[2].code != http.StatusOK || json.Unmarshal(calls[2].body, &s) != nil || s.State != jobs.StateSucceeded || s.Job != "cb-1" {
			t.Fatalf("third call: %d %s, want 200 with the job's status", calls[2].code, calls[2].body)
		}

		// Now one that cannot be delivered until the process restarted.
		failing.Store(true)
		before := len(cr.snapshot())
		produceJob("cb-2")
		testkit.Eventually(t, time.Minute, func() bool { return len(cr.snapshot()) >= before+2 }, "the second callback was not attempted")
		if err := run.cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		<-run.done
		failing.Store(false)
		run2 := start(t, "run 2", dir, env, "run", "--brokers", brokers)
		testkit.Eventually(t, time.Minute, func() bool {
			for _, c := range cr.snapshot() {
				if c.job == "cb-2" && c.code == http.StatusOK && c.verified {
					return true
				}
			}
			return false
		}, "the callback pending when the process died never arrived")
		if strings.Contains(run.logText()+run2.logText(), secret) {
			t.Fatalf("the callback secret appears in a log")
		}
		run2.stop(30 * time.Second)
	})
}
