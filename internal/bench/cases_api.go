package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/millrace/millrace/pipeline"
)

// apiWarmup is how many jobs a closed-loop run of the api case submits
// before it measures: they open the clients' connections and the
// producer's, and fetch its metadata.
const apiWarmup = 2000

// apiRateWarmup is how long an open-loop run of the api case offers its
// rate before it measures: a serve process just started on real Kafka
// answers slower for its first two seconds or so (mean 10 ms against 4.5
// ms later, at 1,000 jobs/s).
const apiRateWarmup = 3 * time.Second

// apiTarget is what the api case submits jobs to.
type apiTarget struct {
	name, label string
	// http: to `millrace serve` over HTTP; else directly to Kafka.
	http bool
	// results puts `results: {}` on the pipeline: each submission also
	// writes the job's accepted event, and serve follows the events.
	results bool
}

var (
	apiDirect = apiTarget{name: "direct",
		label: "(e) direct produce: transport.Publisher, a sender per client waiting for its ack"}
	apiHTTP = apiTarget{name: "http", http: true, results: true,
		label: "(f) HTTP API, pipeline with results: {}"}
	apiHTTPNoResults = apiTarget{name: "http-nores", http: true,
		label: "(f') HTTP API, pipeline without results"}
)

// apiRun is one measured load of the api case.
type apiRun struct {
	target apiTarget
	// n jobs were submitted, ok of them accepted; their records were found
	// in the input topic with duplicates extra copies.
	n, ok, duplicates int
	// elapsed is from the first send to the last answer.
	elapsed       time.Duration
	p50, p99, max time.Duration
	// offered and lag are the open loop's send rate and its dispatcher's
	// largest lag behind schedule (0 in a closed loop).
	offered float64
	lag     time.Duration
	// benchCPU and serveCPU are the CPU time of the bench process and of
	// the serve process over the measured jobs (0: not measured).
	benchCPU, serveCPU time.Duration
	// warmConns and conns are how many connections the HTTP client
	// opened in the warm-up and over the measured jobs.
	warmConns, conns int64
	timedOut         bool
	err              error
	// rates are every run's jobs/s, sorted, when there were several.
	rates []float64
}

func (r apiRun) complete() bool { return r.err == nil && !r.timedOut && r.ok == r.n }

// rate is jobs/s from the first send to the last answer, 0 unless
// complete.
func (r apiRun) rate() float64 {
	if !r.complete() || r.elapsed <= 0 {
		return 0
	}
	return float64(r.n) / r.elapsed.Seconds()
}

// status is "ok" or what went wrong.
func (r apiRun) status() string {
	return outcome(r.err, r.timedOut, r.elapsed, r.ok, r.n, r.duplicates)
}

// perJob is d per job, 0 when not measured.
func (r apiRun) perJob(d time.Duration) time.Duration {
	if d == 0 || r.n == 0 {
		return 0
	}
	return d / time.Duration(r.n)
}

// apiResult is what the api case measured: the median closed-loop run of
// each target, and the open-loop runs at -rate. A run that did not take
// place has n 0.
type apiResult struct {
	jobs, clients               int
	direct, http, httpNoResults apiRun
	directAtRate, httpAtRate    apiRun
}

// runAPI measures the HTTP jobs API (`millrace serve`) against producing
// the same records directly: -repeat rounds of -api-requests jobs from
// -api-clients concurrent clients to each target (direct, HTTP with
// results, HTTP without), then -rate jobs/s for -duration (open loop) to
// the HTTP API with results and directly.
func runAPI(ctx context.Context, e *env) apiResult {
	res := apiResult{jobs: e.opts.apiRequests, clients: e.opts.apiClients}
	runs := map[string][]apiRun{}
	targets := []apiTarget{apiDirect, apiHTTP, apiHTTPNoResults}
	for round := range e.opts.repeat {
		for _, t := range targets {
			if ctx.Err() == nil {
				runs[t.name] = append(runs[t.name], runAPILoad(ctx, e, t, fmt.Sprintf("api-%s-%d", t.name, round+1), false))
			}
		}
	}
	med := func(rs []apiRun) apiRun {
		if len(rs) == 0 {
			return apiRun{}
		}
		m, rates := medianRun(rs)
		m.rates = rates
		return m
	}
	res.direct, res.http, res.httpNoResults = med(runs[apiDirect.name]), med(runs[apiHTTP.name]), med(runs[apiHTTPNoResults.name])
	if ctx.Err() == nil {
		res.httpAtRate = runAPILoad(ctx, e, apiHTTP, "api-http-rate", true)
	}
	if ctx.Err() == nil {
		res.directAtRate = runAPILoad(ctx, e, apiDirect, "api-direct-rate", true)
	}
	return res
}

// ratio is the HTTP API's jobs/s over direct produce's, with results or
// without, or 0.
func (a *apiResult) ratio(results bool) float64 {
	h := a.http
	if !results {
		h = a.httpNoResults
	}
	if h.rate() == 0 || a.direct.rate() == 0 {
		return 0
	}
	return h.rate() / a.direct.rate()
}

// runAPILoad submits jobs to t on fresh topics named after name: a closed
// loop of -api-requests jobs from -api-clients clients after apiWarmup
// jobs, or with atRate an open loop of -rate × -duration jobs after a
// warm-up of apiRateWarmup at that rate. Then it reads the input topic back:
// it must hold every accepted job's record; with results, the events
// topic must hold an accepted event per accepted job.
func runAPILoad(ctx context.Context, e *env, t apiTarget, name string, atRate bool) apiRun {
	run := apiRun{target: t, n: e.opts.apiRequests}
	if atRate {
		run.n = int(math.Round(float64(e.opts.rate) * e.opts.duration.Seconds()))
	}
	prefix := e.prefix(name)
	in, out := prefix+".in", prefix+".out"
	defer e.cleanup(prefix)
	how := fmt.Sprintf("%d jobs from %d clients", run.n, e.opts.apiClients)
	if atRate {
		how = fmt.Sprintf("%d jobs at %d/s, open loop", run.n, e.opts.rate)
	}
	e.logf("[api] %s: %s", t.label, how)
	cctx, cancel := context.WithTimeout(ctx, e.opts.timeout)
	defer cancel()
	tg, err := e.startAPITarget(cctx, t, prefix, in, out)
	if err != nil {
		run.err = err
		e.logf("[api] %s", run.status())
		return run
	}
	warm := func() load {
		if atRate {
			return openLoop(cctx, tg.sub, warmBase, int(float64(e.opts.rate)*apiRateWarmup.Seconds()), e.opts.rate)
		}
		return closedLoop(cctx, tg.sub, warmBase, apiWarmup, e.opts.apiClients)
	}()
	var l load
	if warm.err == nil {
		if tg.http != nil {
			run.warmConns = tg.http.dials.Load()
		}
		stopProfile, stopPerf := e.startProfile(name), e.startPerf(tg.pid, name)
		cpu0, cpuOK := processCPU()
		serve0, serveOK := childCPU(tg.pid)
		if atRate {
			l = openLoop(cctx, tg.sub, 0, run.n, e.opts.rate)
		} else {
			l = closedLoop(cctx, tg.sub, 0, run.n, e.opts.apiClients)
		}
		if cpu1, ok := processCPU(); ok && cpuOK {
			run.benchCPU = cpu1 - cpu0
		}
		if serve1, ok := childCPU(tg.pid); ok && serveOK && tg.pid > 0 {
			run.serveCPU = serve1 - serve0
		}
		stopPerf()
		stopProfile()
	}
	if tg.http != nil {
		run.conns = tg.http.dials.Load() - run.warmConns
	}
	closeErr := tg.close()
	run.ok, run.elapsed, run.offered, run.lag = len(l.lat), l.elapsed, l.offered, l.lag
	if len(l.lat) > 0 {
		slices.Sort(l.lat)
		run.p50, run.p99, run.max = percentile(l.lat, 50), percentile(l.lat, 99), l.lat[len(l.lat)-1]
	}
	switch {
	case warm.err != nil:
		err = fmt.Errorf("warm-up: %d jobs failed, first: %w", warm.failed, warm.err)
	case errors.Is(l.err, context.DeadlineExceeded) && ctx.Err() == nil:
		run.timedOut = true
	case l.err != nil:
		err = fmt.Errorf("%d of %d jobs failed, first: %w", l.failed, run.n, l.err)
	default:
		err = e.checkSubmitted(ctx, &run, in, prefix, len(warm.lat))
	}
	run.err = errors.Join(err, closeErr)
	if run.complete() {
		conns := ""
		if t.http {
			conns = fmt.Sprintf("; connections opened: %d in the warm-up, %d after", run.warmConns, run.conns)
		}
		e.logf("[api] ok: %s jobs/s, p50 %s, p99 %s, max %s; CPU per job: bench %s, serve %s%s",
			fmtRate(max(run.rate(), run.offered)), fmtMs(run.p50), fmtMs(run.p99), fmtMs(run.max),
			fmtCPU(run.perJob(run.benchCPU)), fmtCPU(run.perJob(run.serveCPU)), conns)
	} else {
		e.logf("[api] %s", run.status())
	}
	return run
}

// checkSubmitted reads the input topic back: it must hold the record of
// each of run's jobs (ids 0…n-1; the warm-up's are others); with results,
// the events topic must hold the accepted events of them and of the warm
// jobs the warm-up had accepted.
func (e *env) checkSubmitted(ctx context.Context, run *apiRun, in, prefix string, warm int) error {
	t, err := e.countOutput(ctx, in, run.n)
	if err != nil {
		return err
	}
	run.duplicates = t.duplicates
	if t.distinct != run.n {
		run.ok = t.distinct
		return fmt.Errorf("%s holds the records of %d of the %d accepted jobs", in, t.distinct, run.n)
	}
	if !run.target.results {
		return nil
	}
	events := pipeline.JobsTopic(prefix)
	end, err := e.logEnd(events)
	if err != nil {
		return err
	}
	if want := int64(run.n + warm); end < want {
		return fmt.Errorf("%s holds %d events, want an accepted event for each of %d jobs", events, end, want)
	}
	return nil
}

// runningTarget is a target ready for jobs.
type runningTarget struct {
	sub submitter
	// http is the HTTP submitter (nil for direct).
	http *httpSubmitter
	// pid is the serve process's (0 for direct).
	pid   int
	close func() error
}

// startAPITarget makes t ready: for direct, a publisher to a fresh input
// topic; for HTTP, a `millrace serve` process of a pipeline whose stages
// do not run, from a pipelines file the bench writes, and a client of it.
func (e *env) startAPITarget(ctx context.Context, t apiTarget, prefix, in, out string) (*runningTarget, error) {
	if !t.http {
		if err := e.createTopics(in); err != nil {
			return nil, err
		}
		d, err := newDirectSubmitter(e, in)
		if err != nil {
			return nil, err
		}
		return &runningTarget{sub: d, close: d.close}, nil
	}
	srv, err := e.startServe(ctx, prefix, in, out, t.results)
	if err != nil {
		return nil, err
	}
	h := newHTTPSubmitter("http://"+srv.addr+"/v1/pipelines/"+prefix+"/jobs", e.opts.apiClients, e.opts)
	return &runningTarget{sub: h, http: h, pid: srv.child.cmd.Process.Pid, close: func() error {
		h.close()
		return srv.stop()
	}}, nil
}

// serveProcess is a running `millrace serve`.
type serveProcess struct {
	child *child
	addr  string
	dir   string
}

// listening matches serve's log line saying where it listens.
var listening = regexp.MustCompile(`msg="API listening" addr=(\S+)`)

// startServe creates the topics of a one-pipeline file (a jq stage, with
// `results: {}` if results) as millrace would, and runs `bin/millrace
// serve` on it on a free loopback port; it returns once serve said where
// it listens.
func (e *env) startServe(ctx context.Context, prefix, in, out string, results bool) (*serveProcess, error) {
	bin, err := filepath.Abs(e.opts.bin)
	if err == nil {
		_, err = os.Stat(bin)
	}
	if err != nil {
		return nil, fmt.Errorf("the millrace binary: %w (build it with `go build -o bin/millrace ./cmd/millrace`)", err)
	}
	src := pipelinesYAML(e.opts, prefix, in, out, results, stageYAML{filter: "jq", config: `{program: '.'}`}) +
		"api:\n  produce_timeout: 10s\n"
	f, err := pipeline.Parse(prefix+".yaml", []byte(src), os.LookupEnv)
	if err != nil {
		return nil, fmt.Errorf("serve: pipelines file:\n%s\n%w", src, err)
	}
	if err := e.ensureTopics(f.Plan().Topics()); err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "millrace-bench-")
	if err != nil {
		return nil, fmt.Errorf("temp dir: %w", err)
	}
	file := filepath.Join(dir, "pipelines.yaml")
	if err := os.WriteFile(file, []byte(src), 0o644); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("write %s: %w", file, err)
	}
	c, err := startChild(bin, "serve", "-f", file, "--addr", "127.0.0.1:0", "--brokers", strings.Join(e.brokers, ","),
		"--admin-addr", "off", "--log-level", "info", "--stop-timeout", "15s")
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	s := &serveProcess{child: c, dir: dir}
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for s.addr == "" {
		select {
		case <-ctx.Done():
			return nil, errors.Join(fmt.Errorf("serve did not say where it listens: %w", ctx.Err()), s.stop())
		case <-c.inst.done:
			return nil, errors.Join(c.inst.err, s.stop())
		case <-tick.C:
		}
		if m := listening.FindStringSubmatch(c.output.String()); m != nil {
			s.addr = m[1]
		}
	}
	return s, nil
}

// stop stops serve (SIGTERM) and removes its pipelines file.
func (s *serveProcess) stop() error {
	defer os.RemoveAll(s.dir)
	return s.child.stop()
}

// startPerf records the CPU profile of process pid with `perf record`
// (its call graphs) if -cpuprofile-prefix was given, pid is not 0 and
// perf is installed, to PREFIX-BACKEND-NAME.perf.data; the returned func
// stops it.
func (e *env) startPerf(pid int, name string) (stop func()) {
	if e.opts.cpuProfile == "" || pid == 0 {
		return func() {}
	}
	perf, err := exec.LookPath("perf")
	if err != nil {
		e.logf("no CPU profile of the serve process: %v", err)
		return func() {}
	}
	path := fmt.Sprintf("%s-%s-%s.perf.data", e.opts.cpuProfile, strings.Fields(e.backend.name)[0], name)
	out := &tailBuffer{max: 4 << 10}
	cmd := exec.Command(perf, "record", "-F", "999", "-g", "-p", strconv.Itoa(pid), "-o", path)
	cmd.Stdout, cmd.Stderr = out, out
	setParentDeath(cmd)
	if err := cmd.Start(); err != nil {
		e.logf("perf record: %v", err)
		return func() {}
	}
	return func() {
		_ = cmd.Process.Signal(os.Interrupt)
		if err := cmd.Wait(); err != nil {
			e.logf("perf record: %v: %s", err, out.String())
			return
		}
		e.logf("CPU profile of the serve process written to %s (perf report -i %s --no-children)", path, path)
	}
}
