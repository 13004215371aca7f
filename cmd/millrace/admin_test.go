package main_test

import (
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/millrace/millrace/testkit"
)

// adminAddr waits for p to log its admin server's address and returns it.
func adminAddr(t *testing.T, p *proc) string {
	t.Helper()
	return loggedAddr(t, p, "admin server listening")
}

// loggedAddr waits (up to a minute) for p to log msg with an addr and
// returns that address.
func loggedAddr(t *testing.T, p *proc, msg string) string {
	t.Helper()
	p.waitLog(msg, 1, time.Minute)
	m := regexp.MustCompile(`msg="` + regexp.QuoteMeta(msg) + `" addr=(\S+)`).FindStringSubmatch(p.logText())
	if m == nil {
		t.Fatalf("%s: no address in its log line %q:\n%s", p.name, msg, p.logText())
	}
	return m[1]
}

// get fetches url (with a bearer token if not empty) and returns the status
// and body.
func get(t *testing.T, url, token string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// scrape reads addr's /metrics.
func scrape(t *testing.T, addr string) map[string]*dto.MetricFamily {
	t.Helper()
	code, body := get(t, "http://"+addr+"/metrics", "")
	if code != http.StatusOK {
		t.Fatalf("GET /metrics: %d %s", code, body)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return fams
}

// sumOf adds up the samples of a counter or gauge family whose labels match.
func sumOf(fams map[string]*dto.MetricFamily, name string, labels map[string]string) float64 {
	f := fams[name]
	if f == nil {
		return 0
	}
	total := 0.0
next:
	for _, m := range f.GetMetric() {
		for k, v := range labels {
			found := false
			for _, l := range m.GetLabel() {
				if l.GetName() == k && l.GetValue() == v {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			total += m.Counter.GetValue()
		case m.Gauge != nil:
			total += m.Gauge.GetValue()
		}
	}
	return total
}

func twoStages(name, second string) string {
	return fmt.Sprintf(`version: 1
pipelines:
  - name: %[1]s
    input: %[1]s.in
    output: %[1]s.out
    partitions: 4
    stages:
      - {name: one, filter: jq, config: {program: '.one = true'}}
      - {name: two, filter: %[2]s}
`, name, second)
}

// /healthz answers 200 all along; /readyz is 503 while the stages have not
// joined their groups (here: the broker is not up yet), 200 once they
// have, and 503 again as soon as a graceful stop begins, while records in
// flight still drain. An address other hosts can reach needs a token, and
// /metrics then refuses a request without it.
func TestAdmin_health_and_readiness_through_a_start_and_a_stop(t *testing.T) {
	dir := t.TempDir()
	port := freePort(t)
	brokers := fmt.Sprintf("127.0.0.1:%d", port)
	writeFile(t, dir, "pipelines.yaml", `version: 1
pipelines:
  - name: slow
    input: slow.in
    output: slow.out
    partitions: 1
    stages:
      - {name: wait, filter: exec, config: {command: [sh, -c, 'sleep 3; cat']}, concurrency: 4}
`)
	run := start(t, "run", dir, nil, "run", "--brokers", brokers, "--connect-timeout", "0", "--stop-timeout", "30s")
	addr := adminAddr(t, run)
	health := func(when string) {
		t.Helper()
		if code, body := get(t, "http://"+addr+"/healthz", ""); code != http.StatusOK {
			t.Fatalf("%s: /healthz %d %s", when, code, body)
		}
	}
	ready := func() (int, string) { return get(t, "http://"+addr+"/readyz", "") }
	if code, body := ready(); code != http.StatusServiceUnavailable || !strings.Contains(body, "starting") {
		t.Fatalf("before the broker is up: /readyz %d %s, want 503 saying it is starting", code, body)
	}
	health("before the broker is up")

	startBroker(t, "broker", dir, port)
	testkit.Eventually(t, time.Minute, func() bool { code, _ := ready(); return code == http.StatusOK },
		"/readyz never became 200 after the stage joined its group")
	health("running")

	backend := testkit.Backend{Name: "embedded", Brokers: []string{brokers}}
	backend.Produce(t, "slow.in", []testkit.Record{{Key: []byte("a"), Value: []byte(`{"n":1}`)}, {Key: []byte("b"), Value: []byte(`{"n":2}`)}})
	testkit.Eventually(t, 30*time.Second, func() bool {
		return sumOf(scrape(t, addr), "millrace_in_flight_records", nil) > 0
	}, "the records never were in flight")
	_ = run.cmd.Process.Signal(syscall.SIGTERM)
	testkit.Eventually(t, 10*time.Second, func() bool {
		code, body := ready()
		return code == http.StatusServiceUnavailable && strings.Contains(body, "stopping")
	}, "/readyz did not turn 503 when the graceful stop began")
	health("draining")
	select {
	case <-run.done:
		t.Fatalf("run exited before its records drained:\n%s", run.logText())
	default:
	}
	<-run.done
	if got := len(backend.ReadAll(t, "slow.out")); got != 2 {
		t.Fatalf("%d records out after the stop, want the 2 that were in flight", got)
	}

	_, stderr, code := cli(t, dir, "", "run", "--brokers", brokers, "--admin-addr", "0.0.0.0:0")
	if code != 2 || !strings.Contains(stderr, "needs a token") {
		t.Fatalf("non-loopback admin address without a token: exit %d, want 2 with a message\n%s", code, stderr)
	}
	guarded := start(t, "run with a token", dir, nil, "run", "--brokers", brokers, "--admin-addr", "0.0.0.0:0", "--admin-token", "s3cret")
	gaddr := adminAddr(t, guarded)
	gport := gaddr[strings.LastIndex(gaddr, ":")+1:]
	local := "http://127.0.0.1:" + gport
	if code, _ := get(t, local+"/metrics", ""); code != http.StatusUnauthorized {
		t.Fatalf("/metrics without the token: %d, want 401", code)
	}
	if code, _ := get(t, local+"/metrics", "s3cret"); code != http.StatusOK {
		t.Fatalf("/metrics with the token: %d, want 200", code)
	}
	if code, _ := get(t, local+"/healthz", ""); code != http.StatusOK {
		t.Fatalf("/healthz needs no token: %d, want 200", code)
	}
	if strings.Contains(guarded.logText(), "s3cret") {
		t.Fatalf("the token appears in the log:\n%s", guarded.logText())
	}
	guarded.stop(30 * time.Second)
}

// The numbers: 1,000 records, 10 of them poison, through 2 stages:
// /metrics counts 1,000 consumed at stage one, 10 quarantined, 990
// produced at the last stage.
func TestAdmin_metrics_count_records_through_a_pipeline(t *testing.T) {
	testkit.ForEachBackend(t, func(t *testing.T, b testkit.Backend) {
		dir := t.TempDir()
		name := "metrics-" + testkit.Unique()
		writeFile(t, dir, "pipelines.yaml", twoStages(name, "jq, config: {program: 'if .poison then error(\"poison\") else . end'}"))
		run := start(t, "run", dir, nil, "run", "--brokers", strings.Join(b.Brokers, ","))
		addr := adminAddr(t, run)
		run.waitLog("stage ready", 2, time.Minute)
		var in []testkit.Record
		for i := range 1000 {
			in = append(in, testkit.Record{Key: fmt.Appendf(nil, "k%d", i%50), Value: fmt.Appendf(nil, `{"i":%d,"poison":%v}`, i, i%100 == 7)})
		}
		b.Produce(t, name+".in", in)
		var fams map[string]*dto.MetricFamily
		testkit.Eventually(t, 2*time.Minute, func() bool {
			fams = scrape(t, addr)
			return sumOf(fams, "millrace_records_produced_total", map[string]string{"stage": "two"}) >= 990 &&
				sumOf(fams, "millrace_records_quarantined_total", nil) >= 10
		}, "the pipeline did not finish")
		stage := func(s string) map[string]string { return map[string]string{"pipeline": name, "stage": s} }
		for _, c := range []struct {
			metric string
			labels map[string]string
			want   float64
		}{
			{"millrace_records_consumed_total", stage("one"), 1000},
			{"millrace_records_produced_total", stage("one"), 1000},
			{"millrace_records_consumed_total", stage("two"), 1000},
			{"millrace_records_quarantined_total", stage("two"), 10},
			{"millrace_filter_errors_total", map[string]string{"stage": "two", "reason": "permanent"}, 10},
			{"millrace_records_produced_total", stage("two"), 990},
			{"millrace_records_dropped_total", stage("one"), 0},
			{"millrace_stage_ready", nil, 2},
		} {
			if fams[c.metric] == nil {
				t.Errorf("%s is not exposed", c.metric)
			} else if got := sumOf(fams, c.metric, c.labels); got != c.want {
				t.Errorf("%s%v = %v, want %v", c.metric, c.labels, got, c.want)
			}
		}
		// The stages fetched and produced: the requests they sent to do it
		// are counted by API.
		for _, api := range []string{"Produce", "Fetch", "JoinGroup"} {
			if got := sumOf(fams, "millrace_kafka_requests_total", map[string]string{"api": api}); got < 1 {
				t.Errorf("millrace_kafka_requests_total{api=%q} = %v, want at least 1", api, got)
			}
		}
		for _, h := range []string{"millrace_filter_duration_seconds", "millrace_record_latency_seconds"} {
			f := fams[h]
			if f == nil || len(f.GetMetric()) == 0 || f.GetMetric()[0].GetHistogram().GetSampleCount() == 0 {
				t.Errorf("histogram %s has no samples", h)
			}
		}
		// OpenMetrics, asked for, carries exemplars: a job id on the latency
		// histogram.
		req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/metrics", nil)
		req.Header.Set("Accept", "application/openmetrics-text;version=1.0.0")
		resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		om, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !regexp.MustCompile(`millrace_record_latency_seconds_bucket\{[^}]*\} \d+ # \{job_id="[0-9a-f-]{36}"\}`).Match(om) {
			t.Errorf("no job-id exemplar on the latency histogram in the OpenMetrics exposition (%s)", resp.Header.Get("Content-Type"))
		}
		for _, f := range []string{"millrace_build_info", "go_goroutines", "process_resident_memory_bytes"} {
			if fams[f] == nil {
				t.Errorf("/metrics has no %s", f)
			}
		}
		run.stop(30 * time.Second)
	})
}

// Consumer lag is exported for every stage of the file, also one that no
// process runs: stage two stopped, 5,000 records through stage one, the
// lag of stage two summed over partitions is 5,000 (from the process
// running stage one); once stage two runs and drains them, 0.
func TestAdmin_consumer_lag_of_a_stopped_stage(t *testing.T) {
	testkit.ForEachBackend(t, func(t *testing.T, b testkit.Backend) {
		dir := t.TempDir()
		name := "lag-" + testkit.Unique()
		writeFile(t, dir, "pipelines.yaml", twoStages(name, "jq, config: {program: '.'}"))
		brokers := strings.Join(b.Brokers, ",")
		one := start(t, "stage one", dir, nil, "run", "--brokers", brokers, "--stage", name+"/one")
		addr := adminAddr(t, one)
		one.waitLog("stage ready", 1, time.Minute)
		var in []testkit.Record
		for i := range 5000 {
			in = append(in, testkit.Record{Key: fmt.Appendf(nil, "k%d", i%100), Value: fmt.Appendf(nil, `{"i":%d}`, i)})
		}
		b.Produce(t, name+".in", in)
		lagOf := func(stage string) float64 {
			return sumOf(scrape(t, addr), "millrace_consumer_lag_records", map[string]string{"pipeline": name, "stage": stage})
		}
		var lagOne, lagTwo float64 // the last values seen, for the failure message
		testkit.Eventually(t, 2*time.Minute, func() bool {
			lagOne, lagTwo = lagOf("one"), lagOf("two")
			return lagTwo == 5000 && lagOne == 0
		}, "lag: stage one %v, stage two %v; want 0 and 5000", later(func() any { return lagOne }), later(func() any { return lagTwo }))
		two := start(t, "stage two", dir, nil, "run", "--brokers", brokers, "--stage", name+"/two")
		two.waitLog("stage ready", 1, time.Minute)
		testkit.Eventually(t, 2*time.Minute, func() bool { lagTwo = lagOf("two"); return lagTwo == 0 },
			"stage two's lag is %v after it ran, want 0", later(func() any { return lagTwo }))
		two.stop(30 * time.Second)
		one.stop(30 * time.Second)
	})
}

// later is a value a failure message formats when it is printed (testkit.
// Eventually's arguments are evaluated before it waits).
type later func() any

func (l later) String() string { return fmt.Sprint(l()) }
