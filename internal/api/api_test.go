package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama/mocks"
	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	_ "github.com/millrace/millrace/filters/std"
	"github.com/millrace/millrace/internal/api"
	"github.com/millrace/millrace/jobs"
	"github.com/millrace/millrace/kafkaops"
	"github.com/millrace/millrace/pipeline"
	"github.com/millrace/millrace/testkit"
	"github.com/millrace/millrace/transport"
)

func TestMain(m *testing.M) {
	// NDJSON is text to the document: one job's payload per line.
	openapi3filter.RegisterBodyDecoder("application/x-ndjson",
		func(body io.Reader, _ http.Header, _ *openapi3.SchemaRef, _ openapi3filter.EncodingFn) (any, error) {
			b, err := io.ReadAll(body)
			return string(b), err
		})
	testkit.Main(m)
}

// contract is docs/api.yaml, loaded and validated once.
var contract = sync.OnceValues(func() (*openapi3.T, error) {
	doc, err := openapi3.NewLoader().LoadFromFile("../../docs/api.yaml")
	if err != nil {
		return nil, err
	}
	return doc, doc.Validate(context.Background())
})

// checked is an httptest server of h whose every request and response is
// validated against docs/api.yaml (a mismatch fails t), and which records
// the operations and status codes it answered.
type checked struct {
	t      *testing.T
	srv    *httptest.Server
	router routers.Router
	mu     sync.Mutex
	seen   map[string]bool // "operationId status"
}

func newChecked(t *testing.T, h http.Handler, seen map[string]bool) *checked {
	t.Helper()
	doc, err := contract()
	if err != nil {
		t.Fatalf("docs/api.yaml: %v", err)
	}
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	c := &checked{t: t, router: router, seen: seen}
	c.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		c.validate(r, body, rec)
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
	}))
	t.Cleanup(c.srv.Close)
	return c
}

func (c *checked) validate(r *http.Request, body []byte, rec *httptest.ResponseRecorder) {
	vr := r.Clone(context.Background())
	vr.URL.Scheme, vr.URL.Host = "http", "127.0.0.1:8080" // the document's server
	vr.Body = io.NopCloser(bytes.NewReader(body))
	route, params, err := c.router.FindRoute(vr)
	if err != nil {
		if rec.Code != http.StatusNotFound && rec.Code != http.StatusMethodNotAllowed {
			c.t.Errorf("%s %s answered %d but docs/api.yaml has no such operation: %v", r.Method, r.URL.Path, rec.Code, err)
		}
		return
	}
	in := &openapi3filter.RequestValidationInput{Request: vr, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}}
	if rec.Code < 400 { // a refused request may break the document's rules: that is why it was refused
		if err := openapi3filter.ValidateRequest(context.Background(), in); err != nil {
			c.t.Errorf("%s %s: the request does not match docs/api.yaml: %v", r.Method, r.URL, err)
		}
	}
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: rec.Code, Header: rec.Header(),
		Body: io.NopCloser(bytes.NewReader(rec.Body.Bytes())), Options: &openapi3filter.Options{IncludeResponseStatus: true}}
	if err := openapi3filter.ValidateResponse(context.Background(), out); err != nil {
		c.t.Errorf("%s %s: the %d answer does not match docs/api.yaml: %v\n%s", r.Method, r.URL, rec.Code, err, rec.Body)
	}
	c.mu.Lock()
	c.seen[fmt.Sprintf("%s %d", route.Operation.OperationID, rec.Code)] = true
	c.mu.Unlock()
}

// do sends a request with a real HTTP client and returns the answer's
// status, headers and body.
func (c *checked) do(method, path string, body string, hdr ...string) (int, http.Header, []byte) {
	c.t.Helper()
	req, err := http.NewRequest(method, c.srv.URL+path, strings.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, b
}

// problem returns a check of an answer: status want with a problem
// document of type typ; it returns the document.
func (c *checked) problem(want int, typ string) func(int, http.Header, []byte) api.Problem {
	return func(code int, h http.Header, b []byte) api.Problem {
		c.t.Helper()
		var p api.Problem
		if code != want || h.Get("Content-Type") != "application/problem+json" || json.Unmarshal(b, &p) != nil ||
			p.Status != want || p.Type != "urn:millrace:problem:"+typ {
			c.t.Fatalf("got %d %s %s, want %d with a problem document of type %s", code, h.Get("Content-Type"), b, want, typ)
		}
		return p
	}
}

// plan is the test's pipelines: work (2 stages, results, dedup on the job
// id first, so an Idempotency-Key job runs once), idle (results, never
// run: its jobs stay accepted) and plain (no results).
func plan(t *testing.T, name, api string) *pipeline.Plan {
	return testkit.LoadYAML(t, fmt.Sprintf(`version: 1
%[2]s
pipelines:
  - name: %[1]s-work
    input: %[1]s-work.in
    output: %[1]s-work.out
    partitions: 2
    results: {}
    stages:
      - name: one
        filter: jq
        dedup: {key: "header:millrace-job"}
        config: {program: 'if .poison then error("poison \(.n)") else . end'}
        retry: {attempts: 1}
      - {name: two, filter: jq, config: {program: '.done = true'}}
  - name: %[1]s-idle
    input: %[1]s-idle.in
    partitions: 2
    results: {}
    stages: [{name: s, filter: jq, config: {program: '.'}}]
  - name: %[1]s-plain
    input: %[1]s-plain.in
    partitions: 1
    stages: [{name: s, filter: jq, config: {program: '.'}}]
`, name, api))
}

// serve serves plan's API on b, with pub (nil: a publisher on b).
func serve(t *testing.T, b testkit.Backend, p *pipeline.Plan, pub *transport.Publisher) *api.Server {
	t.Helper()
	client := b.Client(t)
	if err := kafkaops.EnsureTopics(client, p.Topics(), -1, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	if pub == nil {
		cfg, err := api.ProducerConfig(p)
		if err != nil {
			t.Fatal(err)
		}
		if pub, err = transport.NewPublisher(b.Brokers, cfg); err != nil {
			t.Fatal(err)
		}
	}
	s, err := api.New(api.Config{Plan: p, Client: client, Brokers: b.Brokers, Publisher: pub})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.Close()
		_ = pub.Close()
	})
	testkit.Eventually(t, time.Minute, func() bool { ok, _ := s.Ready(); return ok }, "the API's job views did not catch up")
	return s
}

func (c *checked) accepted(code int, h http.Header, b []byte) api.Accepted {
	t := c.t
	t.Helper()
	var a api.Accepted
	if code != http.StatusAccepted || json.Unmarshal(b, &a) != nil || a.JobID == "" || h.Get("Location") != a.StatusURL ||
		h.Get("Retry-After") == "" {
		t.Fatalf("got %d %v %s, want 202 with job_id, Location = status_url and Retry-After", code, h, b)
	}
	return a
}

func statusOf(t *testing.T, b []byte) jobs.Status {
	t.Helper()
	var s jobs.Status
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatalf("status: %v\n%s", err, b)
	}
	return s
}

// Every endpoint, through a real HTTP client, each answer checked against
// docs/api.yaml; at the end every operation of the document and each of
// its documented status codes the test can bring about has been seen.
func TestAPI_endpoints_match_the_openapi_document(t *testing.T) {
	testkit.ForEachBackend(t, func(t *testing.T, b testkit.Backend) {
		name := "api-" + testkit.Unique()
		p := plan(t, name, "api: {max_body_bytes: 65536, max_wait: 20s}")
		testkit.Run(t, b, p, testkit.RunOptions{Stages: []string{name + "-work"}})
		seen := map[string]bool{}
		c := newChecked(t, serve(t, b, p, nil).Handler(), seen)
		work, idle, plain := "/v1/pipelines/"+name+"-work", "/v1/pipelines/"+name+"-idle", "/v1/pipelines/"+name+"-plain"

		code, _, body := c.do("GET", "/v1/pipelines", "")
		var ps api.Pipelines
		if code != 200 || json.Unmarshal(body, &ps) != nil || len(ps.Pipelines) != 3 || !ps.Pipelines[0].Results ||
			ps.Pipelines[2].Results || !slices.Equal(ps.Pipelines[0].Stages, []string{"one", "two"}) {
			t.Fatalf("GET /v1/pipelines: %d %s", code, body)
		}

		// A good job: 202, then a long-poll ends 200 succeeded with its output inline.
		code, h, body := c.do("POST", work+"/jobs", `{"n":1}`, "Content-Type", "application/json", "Millrace-Key", "k-1",
			"Millrace-Header-Tenant", "t-9", "Millrace-Header-Millrace-Correlation-Id", "corr-1")
		a := c.accepted(code, h, body)
		if a.StatusURL != "/v1/jobs/"+a.JobID {
			t.Errorf("status_url %q, want /v1/jobs/<job_id>", a.StatusURL)
		}
		code, _, body = c.do("GET", a.StatusURL+"?wait=20s", "")
		s := statusOf(t, body)
		if code != 200 || s.State != jobs.StateSucceeded || s.Counts.Outputs != 1 || len(s.Outputs) != 1 ||
			!strings.Contains(string(s.Outputs[0].Value), `"done":true`) || s.Outputs[0].Key != "k-1" || s.CorrelationID != "corr-1" {
			t.Fatalf("long-poll of a good job: %d %s, want 200 succeeded with its output (key k-1) inline", code, body)
		}
		in := b.ReadAll(t, name+"-work.in")
		if len(in) != 1 || string(in[0].Key) != "k-1" || in[0].Headers["millrace-job"] != a.JobID ||
			in[0].Headers["content-type"] != "application/json" || in[0].Headers["tenant"] != "t-9" || string(in[0].Value) != `{"n":1}` {
			t.Fatalf("the input record: %+v, want the body with key k-1 and headers millrace-job, content-type, tenant", in)
		}
		code, _, body = c.do("GET", work+"/jobs/"+a.JobID, "") // pipeline-scoped: the same
		if code != 200 || statusOf(t, body).State != jobs.StateSucceeded {
			t.Fatalf("GET %s/jobs/<id>: %d %s", work, code, body)
		}

		// A poison job ends failed with its error.
		a = c.accepted(c.do("POST", work+"/jobs", `{"n":2,"poison":true}`))
		code, _, body = c.do("GET", a.StatusURL+"?wait=20", "")
		if s := statusOf(t, body); code != 200 || s.State != jobs.StateFailed || len(s.Errors) != 1 || !strings.Contains(s.Errors[0].Error, "poison 2") {
			t.Fatalf("long-poll of a poison job: %d %s, want 200 failed with the error", code, body)
		}

		// The same Idempotency-Key three times: one job id, one output.
		var ids []string
		for range 3 {
			ids = append(ids, c.accepted(c.do("POST", work+"/jobs", `{"n":3}`, "Idempotency-Key", "order-3-"+name)).JobID)
		}
		if ids[0] != ids[1] || ids[1] != ids[2] {
			t.Fatalf("job ids %v: want one for one Idempotency-Key", ids)
		}
		if other := c.accepted(c.do("POST", idle+"/jobs", `{}`, "Idempotency-Key", "order-3-"+name)).JobID; other == ids[0] {
			t.Errorf("the same Idempotency-Key gave the same job id in another pipeline")
		}
		code, _, body = c.do("GET", "/v1/jobs/"+ids[0]+"?wait=20s", "")
		if s := statusOf(t, body); code != 200 || s.State != jobs.StateSucceeded || s.Counts.Outputs != 1 {
			t.Fatalf("the idempotent job: %d %s, want succeeded with 1 output", code, body)
		}
		testkit.Eventually(t, time.Minute, func() bool { return b.GroupLag(t, "millrace."+name+"-work.one", name+"-work.in") == 0 },
			"stage one did not read the three records")
		out := b.ReadAll(t, name+"-work.out")
		n := 0
		for _, r := range out {
			if r.Headers["millrace-job"] == ids[0] {
				n++
			}
		}
		if n != 1 {
			t.Fatalf("the job of one Idempotency-Key posted 3 times has %d outputs, want 1 (dedup)", n)
		}

		// A job of a pipeline nothing runs stays accepted: 202 with Retry-After, also after a wait.
		a = c.accepted(c.do("POST", idle+"/jobs", `{}`))
		start := time.Now()
		code, h, body = c.do("GET", a.StatusURL+"?wait=1s", "")
		if s := statusOf(t, body); code != 202 || s.State != jobs.StateAccepted || h.Get("Retry-After") == "" || time.Since(start) < time.Second {
			t.Fatalf("a job nothing runs, after wait=1s: %d %v %s (after %s), want 202 accepted with Retry-After after 1s",
				code, h, body, time.Since(start))
		}

		// A batch: a job per non-blank line.
		code, _, body = c.do("POST", work+"/jobs:batch", "{\"n\":10}\n\n{\"n\":11}\n", "Content-Type", "application/x-ndjson")
		var batch api.Batch
		if code != 202 || json.Unmarshal(body, &batch) != nil || batch.Accepted != 2 || batch.Failed != 0 ||
			batch.Jobs[0].Line != 1 || batch.Jobs[1].Line != 3 || batch.Jobs[1].JobID == "" {
			t.Fatalf("batch: %d %s, want 202 with jobs for lines 1 and 3", code, body)
		}
		for _, j := range batch.Jobs {
			code, _, body = c.do("GET", j.StatusURL+"?wait=20s", "")
			if code != 200 || statusOf(t, body).State != jobs.StateSucceeded {
				t.Fatalf("batch line %d: %d %s, want succeeded", j.Line, code, body)
			}
		}

		// A batch far over the reader's buffer: each line's record is that
		// line, with its job id.
		var nd strings.Builder
		for i := range 200 {
			fmt.Fprintf(&nd, "{\"line\":%d,\"pad\":%q}\r\n", i+1, strings.Repeat(string(rune('a'+i%26)), 40+i))
		}
		code, _, body = c.do("POST", idle+"/jobs:batch", nd.String(), "Content-Type", "application/x-ndjson")
		batch = api.Batch{}
		if code != 202 || json.Unmarshal(body, &batch) != nil || batch.Accepted != 200 {
			t.Fatalf("a batch of 200: %d %.300s", code, body)
		}
		byJob := map[string]testkit.Record{}
		for _, r := range b.ReadAll(t, name+"-idle.in") {
			byJob[r.Headers["millrace-job"]] = r
		}
		lines := strings.Split(nd.String(), "\r\n")
		for _, j := range batch.Jobs {
			r, ok := byJob[j.JobID]
			if !ok || string(r.Value) != lines[j.Line-1] || r.Headers["content-type"] != "" {
				t.Fatalf("batch line %d: record %q (found %v, content-type %q), want %q and no content-type",
					j.Line, r.Value, ok, r.Headers["content-type"], lines[j.Line-1])
			}
		}

		// Errors a client can act on.
		c.problem(404, "unknown-pipeline")(c.do("POST", "/v1/pipelines/nope/jobs", `{}`))
		c.problem(404, "unknown-job")(c.do("GET", "/v1/jobs/no-such-job", ""))
		c.problem(400, "bad-request")(c.do("GET", "/v1/jobs/no-such-job?wait=soon", ""))
		c.problem(400, "bad-request")(c.do("GET", "/v1/jobs/x?wait=1h", ""))
		c.problem(413, "body-too-large")(c.do("POST", work+"/jobs", strings.Repeat("x", 65537)))
		c.problem(400, "bad-request")(c.do("POST", work+"/jobs", `{}`, "Millrace-Header-Millrace-Job", "forged"))
		if p := c.problem(400, "bad-request")(c.do("POST", work+"/jobs", `{}`, "Millrace-Header-Millrace-Reply-To", "elsewhere")); !strings.Contains(p.Detail, "reply_topics") {
			t.Errorf("a reply topic not in results.reply_topics: %s", p.Detail)
		}
		c.problem(400, "bad-request")(c.do("POST", work+"/jobs", `{}`, "Idempotency-Key", strings.Repeat("k", 256)))
		c.problem(400, "bad-request")(c.do("POST", work+"/jobs:batch", "\n\n"))
		c.problem(400, "bad-request")(c.do("POST", work+"/jobs:batch", "{}\n", "Millrace-Key", "k"))
		code, h, body = c.do("DELETE", "/v1/jobs/x", "")
		if c.problem(405, "method-not-allowed")(code, h, body); h.Get("Allow") != "GET, HEAD" {
			t.Errorf("405 without Allow: GET, HEAD: %v", h)
		}
		a = c.accepted(c.do("POST", plain+"/jobs", `{}`))
		if a.StatusURL != plain+"/jobs/"+a.JobID {
			t.Errorf("a job of a pipeline without results: status_url %q, want the pipeline's", a.StatusURL)
		}
		p409 := c.problem(409, "no-results")(c.do("GET", a.StatusURL, ""))
		if !strings.Contains(p409.Detail, "results:") {
			t.Errorf("409 without the hint to add results: %s", p409.Detail)
		}
		if got := b.ReadAll(t, name+"-plain.in"); len(got) != 1 || got[0].Headers["millrace-job"] != a.JobID {
			t.Errorf("the plain pipeline's input: %+v, want the one record", got)
		}

		for _, want := range []string{"listPipelines 200", "submitJob 202", "submitJob 400", "submitJob 404", "submitJob 413",
			"submitJobs 202", "submitJobs 400", "getJob 200", "getJob 202", "getJob 400", "getJob 404",
			"getPipelineJob 200", "getPipelineJob 409"} {
			if !seen[want] {
				t.Errorf("no answer %q was seen (and checked against docs/api.yaml)", want)
			}
		}
	})
}

// A record Kafka does not take is answered 503 with Retry-After and no
// job id; so is a batch none of whose records it took; a batch of which
// it took some is 207, each line saying what became of it.
func TestAPI_a_record_the_broker_refuses_is_503_and_no_job(t *testing.T) {
	b := testkit.Embedded(t)
	name := "api503-" + testkit.Unique()
	p := plan(t, name, "")
	cfg := mocks.NewTestConfig()
	cfg.Producer.Return.Successes = true
	cfg.Producer.MaxMessageBytes = 100_000
	producer := mocks.NewAsyncProducer(t, cfg)
	refused := errors.New("kafka: client has run out of available brokers to talk to")
	for range 3 {
		producer.ExpectInputAndFail(refused)
	}
	producer.ExpectInputAndSucceed() // a batch of two: one taken, one not
	producer.ExpectInputAndFail(refused)
	seen := map[string]bool{}
	c := newChecked(t, serve(t, b, p, transport.NewPublisherWith(producer, cfg)).Handler(), seen)
	code, h, body := c.do("POST", "/v1/pipelines/"+name+"-plain/jobs", `{}`)
	pr := c.problem(503, "broker-unavailable")(code, h, body)
	if h.Get("Retry-After") == "" || !strings.Contains(pr.Detail, "same Idempotency-Key") || strings.Contains(string(body), "job_id") {
		t.Fatalf("503 %v %s: want Retry-After, the advice to retry with the same Idempotency-Key and no job id", h, body)
	}
	code, h, body = c.do("POST", "/v1/pipelines/"+name+"-plain/jobs:batch", "{}\n{}\n")
	var batch api.Batch
	if code != 503 || h.Get("Retry-After") == "" || json.Unmarshal(body, &batch) != nil || batch.Failed != 2 || batch.Jobs[0].JobID != "" ||
		batch.Jobs[1].Error.Type != "urn:millrace:problem:broker-unavailable" {
		t.Fatalf("a batch none of whose records Kafka took: %d %v %s, want 503 with each line's problem and no job id", code, h, body)
	}
	code, _, body = c.do("POST", "/v1/pipelines/"+name+"-plain/jobs:batch", "{\"n\":1}\n{\"n\":2}\n", "Content-Type", "application/x-ndjson")
	batch = api.Batch{}
	if code != 207 || json.Unmarshal(body, &batch) != nil || batch.Accepted != 1 || batch.Failed != 1 ||
		batch.Jobs[0].Status != 202 || batch.Jobs[0].JobID == "" || batch.Jobs[1].Status != 503 || batch.Jobs[1].JobID != "" ||
		batch.Jobs[1].Error == nil || batch.Jobs[1].Line != 2 {
		t.Fatalf("a batch whose second record Kafka refused: %d %s, want 207, line 1 accepted, line 2 503 without a job id", code, body)
	}
	// A record over the producer's limit (100,000 bytes here), though the
	// body is under api.max_body_bytes (1 MiB): 413, and nothing is sent,
	// not its accepted event either (the mock producer fails the test on a
	// record it does not expect).
	p413 := c.problem(413, "body-too-large")(c.do("POST", "/v1/pipelines/"+name+"-work/jobs", strings.Repeat("x", 100_100)))
	if !strings.Contains(p413.Detail, "MESSAGE_TOO_LARGE") {
		t.Errorf("413 for a record over the producer's limit: %s", p413.Detail)
	}
	if !seen["submitJob 503"] || !seen["submitJobs 503"] || !seen["submitJobs 207"] {
		t.Errorf("503s not checked against docs/api.yaml: %v", seen)
	}
}

// With api.tokens every request needs one of them (401 without, with
// WWW-Authenticate), and a token limited to pipelines sees only those.
func TestAPI_bearer_tokens_and_their_pipelines(t *testing.T) {
	b := testkit.Embedded(t)
	name := "apitok-" + testkit.Unique()
	t.Setenv("API_TOKEN_ALL", "all-"+name)
	t.Setenv("API_TOKEN_WORK", "work-"+name)
	p := plan(t, name, fmt.Sprintf("api:\n  tokens:\n    - {token: \"${API_TOKEN_ALL}\"}\n    - {token: \"${API_TOKEN_WORK}\", pipelines: [%s-work]}", name))
	seen := map[string]bool{}
	c := newChecked(t, serve(t, b, p, nil).Handler(), seen)
	work, plain := "/v1/pipelines/"+name+"-work", "/v1/pipelines/"+name+"-plain"
	for _, auth := range []string{"", "Bearer wrong", "Basic " + "all-" + name, "Bearer "} {
		code, h, body := c.do("POST", work+"/jobs", `{}`, "Authorization", auth)
		c.problem(401, "unauthorized")(code, h, body)
		if h.Get("WWW-Authenticate") == "" {
			t.Errorf("401 without WWW-Authenticate")
		}
		if strings.Contains(string(body), "all-"+name) || strings.Contains(string(body), "work-"+name) {
			t.Errorf("a 401 shows a token: %s", body)
		}
	}
	c.accepted(c.do("POST", work+"/jobs", `{}`, "Authorization", "bearer work-"+name)) // the scheme in any case
	// One Idempotency-Key, two tokens: two jobs (the key is the client's).
	idA := c.accepted(c.do("POST", work+"/jobs", `{}`, "Authorization", "Bearer work-"+name, "Idempotency-Key", "k1")).JobID
	idB := c.accepted(c.do("POST", work+"/jobs", `{}`, "Authorization", "Bearer all-"+name, "Idempotency-Key", "k1")).JobID
	if again := c.accepted(c.do("POST", work+"/jobs", `{}`, "Authorization", "Bearer work-"+name, "Idempotency-Key", "k1")).JobID; idA == idB || again != idA {
		t.Errorf("Idempotency-Key k1: token work %s then %s, token all %s; want one id per token", idA, again, idB)
	}
	c.accepted(c.do("POST", plain+"/jobs", `{}`, "Authorization", "Bearer all-"+name))
	c.problem(403, "forbidden")(c.do("POST", plain+"/jobs", `{}`, "Authorization", "Bearer work-"+name))
	c.problem(403, "forbidden")(c.do("GET", plain+"/jobs/x", "", "Authorization", "Bearer work-"+name))
	code, _, body := c.do("GET", "/v1/pipelines", "", "Authorization", "Bearer work-"+name)
	var ps api.Pipelines
	if code != 200 || json.Unmarshal(body, &ps) != nil || len(ps.Pipelines) != 1 || ps.Pipelines[0].Name != name+"-work" {
		t.Fatalf("GET /v1/pipelines with a token for one pipeline: %d %s, want only it", code, body)
	}
	for _, want := range []string{"submitJob 401", "submitJob 403", "getPipelineJob 403", "listPipelines 200"} {
		if !seen[want] {
			t.Errorf("no answer %q was seen", want)
		}
	}
}

// Listen refuses an address other hosts can reach without tokens.
func TestListen_needs_tokens_off_loopback(t *testing.T) {
	_, err := api.Listen("0.0.0.0:0", http.NotFoundHandler(), pipeline.APIPlan{}, nil)
	if !errors.Is(err, api.ErrNeedsToken) {
		t.Fatalf("Listen on 0.0.0.0 without tokens: %v, want ErrNeedsToken", err)
	}
	s, err := api.Listen("127.0.0.1:0", http.NotFoundHandler(), pipeline.APIPlan{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = s.Shutdown(context.Background())
}
