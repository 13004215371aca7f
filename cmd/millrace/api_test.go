package main_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/millrace/millrace/jobs"
	"github.com/millrace/millrace/testkit"
)

// apiAddr waits for p to log its API's address and returns it.
func apiAddr(t *testing.T, p *proc) string {
	t.Helper()
	return loggedAddr(t, p, "API listening")
}

// answer is an HTTP response, read.
type answer struct {
	code   int
	header http.Header
	body   string
	took   time.Duration
}

// call sends a request with a real HTTP client (headers as name, value
// pairs) and reads the answer.
func call(t *testing.T, method, url, body string, hdr ...string) answer {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	c := &http.Client{Timeout: 2 * time.Minute}
	start := time.Now()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return answer{code: resp.StatusCode, header: resp.Header, body: string(b), took: time.Since(start)}
}

// submitted is the job id of a 202 answer with Location.
func submitted(t *testing.T, a answer) string {
	t.Helper()
	var acc struct {
		JobID     string `json:"job_id"`
		StatusURL string `json:"status_url"`
	}
	if a.code != http.StatusAccepted || json.Unmarshal([]byte(a.body), &acc) != nil || acc.JobID == "" ||
		a.header.Get("Location") != acc.StatusURL || a.header.Get("Retry-After") == "" {
		t.Fatalf("submit: %d %v %s, want 202 with job_id, Location and Retry-After", a.code, a.header, a.body)
	}
	return acc.JobID
}

// The acceptance, with a real HTTP client on two `millrace serve`
// processes beside a `millrace run` of the stages: submit (202 +
// Location), long-poll, `succeeded` with the outputs; a poison payload
// ends `failed` with its error; both servers answer the same status for
// the same job; a server stops gracefully.
func TestServe_two_servers_submit_long_poll_and_agree(t *testing.T) {
	testkit.ForEachBackend(t, func(t *testing.T, b testkit.Backend) {
		dir := t.TempDir()
		name := "serve-" + testkit.Unique()
		brokers := strings.Join(b.Brokers, ",")
		writeFile(t, dir, "pipelines.yaml", resultsPipeline(name, ""))
		run := start(t, "run", dir, nil, "run", "--brokers", brokers)
		run.waitLog("stage ready", 3, time.Minute)
		a := start(t, "serve-a", dir, nil, "serve", "--brokers", brokers, "--addr", "127.0.0.1:0")
		bb := start(t, "serve-b", dir, nil, "serve", "--brokers", brokers, "--addr", "127.0.0.1:0")
		urlA, urlB := "http://"+apiAddr(t, a), "http://"+apiAddr(t, bb)
		for _, p := range []*proc{a, bb} {
			addr := adminAddr(t, p)
			testkit.Eventually(t, time.Minute, func() bool { code, _ := get(t, "http://"+addr+"/readyz", ""); return code == 200 },
				"%s not ready", p.name)
		}

		good := call(t, "POST", urlA+"/v1/pipelines/"+name+"/jobs", `{"items":[{"n":1},{"n":2},{"n":3}]}`,
			"Content-Type", "application/json")
		id := submitted(t, good)
		loc := good.header.Get("Location")
		done := call(t, "GET", urlB+loc+"?wait=30s", "")
		var s jobs.Status
		if done.code != 200 || json.Unmarshal([]byte(done.body), &s) != nil || s.State != jobs.StateSucceeded ||
			s.Counts.Outputs != 3 || len(s.Outputs) != 3 || !strings.Contains(string(s.Outputs[0].Value), `"done":true`) {
			t.Fatalf("long-poll on the other server: %d %s, want 200 succeeded with its 3 outputs", done.code, done.body)
		}
		if again := call(t, "GET", urlA+loc, ""); again.code != 200 || again.body != done.body {
			t.Fatalf("the two servers differ on job %s:\n a: %d %s\n b: %d %s", id, again.code, again.body, done.code, done.body)
		}

		poison := submitted(t, call(t, "POST", urlB+"/v1/pipelines/"+name+"/jobs", `{"items":[{"n":1},{"n":3,"poison":true}]}`))
		failed := call(t, "GET", urlA+"/v1/jobs/"+poison+"?wait=30s", "")
		if failed.code != 200 || json.Unmarshal([]byte(failed.body), &s) != nil || s.State != jobs.StateFailed ||
			len(s.Errors) != 1 || !strings.Contains(s.Errors[0].Error, "poison item 3") {
			t.Fatalf("a poison job: %d %s, want 200 failed with the error", failed.code, failed.body)
		}
		if other := call(t, "GET", urlB+"/v1/jobs/"+poison, ""); other.body != failed.body {
			t.Fatalf("the two servers differ on the failed job:\n%s\n%s", failed.body, other.body)
		}
		// What the servers say is what the CLI says.
		if ls := jobsLs(t, dir, brokers, name); ls[id].State != jobs.StateSucceeded || ls[poison].State != jobs.StateFailed {
			t.Fatalf("jobs ls: %+v, want %s succeeded and %s failed", ls, id, poison)
		}
		for _, p := range []*proc{a, bb} {
			p.stop(30 * time.Second)
			if !strings.Contains(p.logText(), "API stopped") {
				t.Errorf("%s did not log a graceful stop:\n%s", p.name, p.logText())
			}
		}
		run.stop(30 * time.Second)
	})
}

// With the broker down, a submission is answered 503 with Retry-After
// within api.produce_timeout, with no job id, and its record never
// appears, not after the broker is back nor after the server flushed on
// stop; once the broker is back, submissions are accepted again.
func TestServe_broker_down_is_503_and_nothing_later(t *testing.T) {
	forEachOwnBroker(t, func(t *testing.T, b *ownBroker) {
		const produceTimeout = 4 * time.Second
		dir := t.TempDir()
		name := "down-" + testkit.Unique()
		brokers := strings.Join(b.backend.Brokers, ",")
		writeFile(t, dir, "pipelines.yaml", resultsPipeline(name, "")+
			fmt.Sprintf("api: {produce_timeout: %s}\n", produceTimeout))
		srv := start(t, "serve", dir, nil, "serve", "--brokers", brokers, "--addr", "127.0.0.1:0")
		b.logs.add(srv)
		url := "http://" + apiAddr(t, srv) + "/v1/pipelines/" + name + "/jobs"
		var accepted, refused []string
		post := func(payload string) answer {
			a := call(t, "POST", url, payload)
			switch a.code {
			case http.StatusAccepted:
				submitted(t, a)
				accepted = append(accepted, payload)
			case http.StatusServiceUnavailable:
				refused = append(refused, payload)
			default:
				t.Fatalf("POST: %d %s, want 202 or 503", a.code, a.body)
			}
			return a
		}
		if a := post(`{"n":"before"}`); a.code != http.StatusAccepted {
			t.Fatalf("with the broker up: %d %s", a.code, a.body)
		}

		b.down(t, "SIGKILL")
		for i := range 3 {
			a := post(fmt.Sprintf(`{"n":"down-%d"}`, i))
			if a.code != http.StatusServiceUnavailable || a.header.Get("Retry-After") == "" ||
				a.header.Get("Content-Type") != "application/problem+json" || strings.Contains(a.body, "job_id") {
				t.Fatalf("with the broker down: %d %v %s, want 503, Retry-After, a problem document and no job id", a.code, a.header, a.body)
			}
			if a.took > produceTimeout {
				t.Errorf("with the broker down the answer took %s, over api.produce_timeout %s", a.took, produceTimeout)
			}
			t.Logf("with the broker down: 503 after %s", a.took.Round(time.Millisecond))
		}

		b.up(t)
		n := 0
		testkit.Eventually(t, 2*time.Minute, func() bool {
			n++
			return post(fmt.Sprintf(`{"n":"after-%d"}`, n)).code == http.StatusAccepted
		}, "submissions were not accepted again after the broker came back")
		srv.stop(30 * time.Second) // flushes the producer: anything still queued would be written now

		var got []string
		for _, r := range b.backend.ReadAll(t, name+".in") {
			got = append(got, string(r.Value))
		}
		slices.Sort(got)
		slices.Sort(accepted)
		if !slices.Equal(got, accepted) {
			t.Fatalf("the input topic holds %q, want exactly the accepted submissions %q (refused: %q)", got, accepted, refused)
		}
		t.Logf("%d accepted, %d refused with 503 (%d while the broker was down); the input topic holds exactly the accepted",
			len(accepted), len(refused), 3)
	})
}

// An API address other hosts can reach needs api.tokens (exit 2, from
// serve and from run --api-addr); with tokens, a request without one or
// with a wrong one is 401, and the token never appears in the log.
func TestServe_tokens(t *testing.T) {
	b := testkit.Embedded(t)
	dir := t.TempDir()
	name := "tok-" + testkit.Unique()
	brokers := strings.Join(b.Brokers, ",")
	writeFile(t, dir, "pipelines.yaml", resultsPipeline(name, ""))
	for _, args := range [][]string{{"serve", "--addr", "0.0.0.0:0"}, {"run", "--api-addr", "0.0.0.0:0"}} {
		out, stderr, code := cli(t, dir, "", append(args, "--brokers", brokers)...)
		if code != 2 || !strings.Contains(stderr, "api.tokens") {
			t.Errorf("%s without tokens: exit %d, want 2 saying api.tokens is needed\n%s%s", args, code, out, stderr)
		}
	}

	const token = "s3cret-canary-token"
	writeFile(t, dir, "tokens.yaml", resultsPipeline(name, "")+"api:\n  tokens: [{token: \"${API_TOKEN}\"}]\n")
	srv := start(t, "serve", dir, []string{"API_TOKEN=" + token}, "serve", "-f", "tokens.yaml", "--brokers", brokers,
		"--addr", "127.0.0.1:0", "--log-level", "debug")
	url := "http://" + apiAddr(t, srv) + "/v1/pipelines/" + name + "/jobs"
	for _, auth := range []string{"", "Bearer not-" + token} {
		if a := call(t, "POST", url, `{}`, "Authorization", auth); a.code != http.StatusUnauthorized || a.header.Get("WWW-Authenticate") == "" {
			t.Errorf("Authorization %q: %d %s, want 401 with WWW-Authenticate", auth, a.code, a.body)
		}
	}
	submitted(t, call(t, "POST", url, `{"secret-payload":1}`, "Authorization", "Bearer "+token))
	srv.stop(30 * time.Second)
	log := srv.logText()
	if !strings.Contains(log, `msg=request method=POST`) {
		t.Errorf("no request log lines at debug level:\n%s", log)
	}
	for _, secret := range []string{token, "secret-payload"} {
		if strings.Contains(log, secret) {
			t.Errorf("the log shows %q:\n%s", secret, log)
		}
	}
}

// The README's tour of the HTTP API, run as it is written, with curl,
// against `millrace run --api-addr` of the example pipelines: each
// command's answer is the one the README shows under it.
func TestREADME_tour_of_the_http_api(t *testing.T) {
	curl, err := exec.LookPath("curl")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("curl is required under CI=true (apt-get install curl; make test does it)")
		}
		t.Skip("SKIPPING: curl is not installed")
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, tour, ok := strings.Cut(string(readme), "`make run` also serves the [HTTP jobs API]")
	if ok {
		_, tour, ok = strings.Cut(tour, "```sh\n")
	}
	if ok {
		tour, _, ok = strings.Cut(tour, "```\n")
	}
	if !ok {
		t.Fatal("README: no HTTP API tour after \"`make run` also serves the [HTTP jobs API]\"")
	}
	var cmds []string
	cmd := ""
	for _, line := range strings.Split(tour, "\n") {
		if strings.HasPrefix(line, "#") || strings.TrimSpace(line) == "" {
			continue
		}
		if c, more := strings.CutSuffix(line, "\\"); more {
			cmd += c
			continue
		}
		cmds = append(cmds, cmd+line)
		cmd = ""
	}
	if len(cmds) != 3 {
		t.Fatalf("README's HTTP API tour: %d commands, want 3 (submit, long-poll, a dropped order): %q", len(cmds), cmds)
	}

	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	run := start(t, "run", root, nil, "run", "--embedded-port", "0", "--data-dir", t.TempDir(), "--api-addr", "127.0.0.1:0")
	base := "http://" + apiAddr(t, run)
	run.waitLog("stage ready", 8, 2*time.Minute)
	sh := func(c string) string {
		t.Helper()
		c = strings.ReplaceAll(c, "http://127.0.0.1:8080", base)
		out, err := exec.Command("sh", "-c", strings.Replace(c, "curl", curl, 1)).CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", c, err, out)
		}
		return string(out)
	}
	jobID := regexp.MustCompile(`"job_id":"([^"]+)"`)

	out := sh(cmds[0])
	m := jobID.FindStringSubmatch(out)
	if !strings.Contains(out, "HTTP/1.1 202 Accepted") || !strings.Contains(out, "Location: /v1/jobs/") || m == nil {
		t.Fatalf("submit: %s\nwant 202 Accepted with a Location and a job_id", out)
	}
	out = sh(strings.ReplaceAll(cmds[1], "4f0c…", m[1]))
	if !strings.Contains(out, `"status":"succeeded"`) || !strings.Contains(out, `"total":19`) || !strings.Contains(out, `"outputs":[{"topic":"orders.confirmed"`) {
		t.Fatalf("long-poll: %s\nwant succeeded with the confirmed order (total 19) inline", out)
	}
	out = sh(cmds[2])
	m = jobID.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("a dropped order: %s\nwant a job_id", out)
	}
	a := call(t, "GET", base+"/v1/jobs/"+m[1]+"?wait=30s", "")
	var s jobs.Status
	if a.code != 200 || json.Unmarshal([]byte(a.body), &s) != nil || s.State != jobs.StateSucceeded || s.Counts.Dropped != 1 {
		t.Fatalf("the dropped order's job: %d %s, want succeeded with dropped 1", a.code, a.body)
	}
	run.stop(30 * time.Second)
}
