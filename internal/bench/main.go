// Command bench measures how fast millrace moves records, beside a raw
// sarama consume→produce loop (the ceiling) and a stock watermill-kafka
// router stage, in one run on the same broker, and prints the figures next
// to millrace's performance targets.
//
//	go run ./internal/bench [-records 200000] [-repeat 3] [-size 256] [-partitions 8]
//	    [-cases raw,stock,noop,noop-nometrics,jq,pipeline,pipeline-jq,pipeline-results,io,latency,api,rss]
//	    [-kafka | -brokers H:P] [-api-requests 20000] [-api-clients 64]
//	    [-rss-records 1000000] [-io-seconds 6] [-broker TUNING] [-timeout 5m] [-out FILE]
//
// Every case runs alone, one after another, on fresh topics and fresh
// consumer groups of one broker: an in-memory embedded broker started for
// the run, and real Apache Kafka too with -kafka (started with
// testkit/realkafka) or -brokers. Throughput cases drain a backlog produced
// before the system under test starts; the latency case offers a fixed load
// and measures produce-to-read time at the output. Every case counts the
// distinct records in its output topic before its figures are trusted; the
// pipeline-results case (the 3-stage pipeline with `results: {}`) also
// reads its job status topic and requires every job to have succeeded.
//
// How it measures:
//
//   - Records are JSON objects of exactly -size bytes carrying a unique id
//     and the producer's clock ({"id":…,"n":0,"ts":…,"pad":"xx…"}), keyed
//     round-robin over -keys keys and partitioned as millrace does (murmur2).
//   - Before the cases, one unreported drain through the raw loop warms the
//     broker up (a fresh broker creates __consumer_offsets on the first
//     group join; a fresh JVM is not yet compiled). After creating topics the
//     bench waits until every partition's leader answers.
//   - Throughput: the backlog is produced with a sarama AsyncProducer, then
//     the system starts; the output topic's log end is polled every 5 ms.
//     records/s is the backlog over start → last output record; steady/s
//     over first → last output record (without the group join). The time
//     counts only once the output was read back and held every id. Each
//     throughput case runs -repeat times, in rounds over the cases (raw,
//     stock, …, raw, stock, …), and reports its median run and the range.
//   - Per record, over each drain (sampled when the system starts and at
//     the poll that saw the last output record): the bench process's CPU
//     time; its heap allocations, objects and bytes (runtime/metrics
//     /gc/heap/allocs:objects and :bytes); with the embedded broker both
//     include the broker's work, which runs in the process. The Kafka
//     requests the system's clients sent, by API key: millrace's and the
//     raw loop's as transport.KafkaRequests counts them (clients made with
//     transport.NewSaramaConfig), the stock stage's through its sarama
//     registries (countingRegistry); the bench's own clients (backlog
//     producer, log-end poller, output counter) have a registry that
//     counts nothing (helperConfig). On real Kafka started with -kafka,
//     the broker JVM's CPU time (/proc/<pid>/stat, 10 ms ticks).
//   - pipeline-jq is the 3-stage pipeline with the jq case's stage three
//     times. io is one stage whose filter waits 10 ms per record on a
//     timer (bench-wait), at stage concurrency 1, 16 and 256 (and
//     max_in_flight the same, per partition), each draining concurrency ×
//     100 × -io-seconds records (at least 600; keyed over -keys keys, or a
//     tenth of the records if fewer): records/s is held against
//     concurrency × 100. Its output is read back and, per partition, each
//     key's ids must rise (they were produced in order, and a key lives in
//     one partition); a violation fails the run.
//   - Latency: warm-up records at -rate until they come out for 1 s, then
//     -rate × -duration records, each stamped just before it is handed to
//     the producer and timed when a reader (sarama partition consumers,
//     outside any group) receives it from the output topic. Each system
//     runs -repeat times, in rounds after the throughput cases, on fresh
//     topics, and reports the run with the median p99 (the higher of the
//     two middle ones) and every run's p99; and, over that run's measured
//     records, the cores the bench process, a broker process and the
//     machine kept busy and the Kafka requests the system sent per record
//     (at a low load each record is its own produce request and fetch
//     response at every hop).
//   - HTTP jobs API (api): bin/millrace serve runs as a child process for a
//     pipeline whose stages do not run, and -api-clients concurrent
//     keep-alive HTTP clients (one http.Client) submit -api-requests jobs of
//     -size bytes, each sending its next once its last was answered 202,
//     after a warm-up; jobs/s is over the first send → the last 202. The
//     same records produced directly by as many senders, each waiting for
//     its ack on one transport.Publisher (millrace's producer, the API's
//     own), are the baseline. Each runs -repeat times, in rounds. Then
//     -rate jobs/s for -duration after 3 s at that rate, open loop (each
//     job sent at its scheduled time on a goroutine of its own, its latency
//     measured from that time), to the API and directly. Every run reads
//     the input topic back: it must hold every accepted job's record. The
//     pipeline has `results: {}`, as usual, so each submission also writes
//     the job's accepted event; a run without it is shown beside.
//   - RSS: bin/millrace run drains -rss-records records through one jq '.'
//     stage as a child process; VmHWM is read from /proc once the output
//     holds them all. It runs twice: on a backlog produced uncompressed,
//     then on one produced snappy-compressed in batches as a Java producer
//     fills them (batch.size 16 KiB per partition, linger.ms 5); the size
//     of each backlog on the broker is reported beside.
//   - Topics of each case are deleted after it, so the in-memory broker does
//     not carry one case's data into the next.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"
)

// Case names accepted by -cases, in the order they run.
const (
	caseRaw      = "raw"
	caseStock    = "stock"
	caseNoop     = "noop"
	caseNoMetric = "noop-nometrics"
	caseJQ       = "jq"
	casePipeline = "pipeline"
	casePipeJQ   = "pipeline-jq"
	casePipeRes  = "pipeline-results"
	caseIO       = "io"
	caseLatency  = "latency"
	caseAPI      = "api"
	caseRSS      = "rss"
)

var allCases = []string{caseRaw, caseStock, caseNoop, caseNoMetric, caseJQ, casePipeline, casePipeJQ, casePipeRes, caseIO, caseLatency, caseAPI, caseRSS}

// options are the command-line flags.
type options struct {
	records     int
	repeat      int
	size        int
	partitions  int
	keys        int
	concurrency int
	cases       map[string]bool
	kafka       bool
	brokers     string
	embedded    bool
	out         string
	timeout     time.Duration
	rate        int
	duration    time.Duration
	rssRecords  int
	ioSeconds   int
	apiRequests int
	apiClients  int
	bin         string
	cpuProfile  string
	broker      string
}

func main() {
	opts, err := parseFlags(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, opts); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// parseFlags reads the flags in args and checks them.
func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	var cases string
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&o.records, "records", 200_000, "records per throughput case (the backlog drained)")
	fs.IntVar(&o.repeat, "repeat", 3, "runs of each throughput and latency case, interleaved (raw, stock, …, raw, stock, …); the report shows the median run and the range")
	fs.IntVar(&o.size, "size", 256, "payload size in bytes (a JSON object padded to this size)")
	fs.IntVar(&o.partitions, "partitions", 8, "partitions of every topic")
	fs.IntVar(&o.keys, "keys", 10_000, "distinct record keys, used round-robin (0: records have no key)")
	fs.IntVar(&o.concurrency, "concurrency", 0, "millrace stage concurrency (0: the pipelines file default)")
	fs.StringVar(&cases, "cases", strings.Join(allCases, ","),
		"cases to run: "+strings.Join(allCases, ",")+
			"; noop-nometrics is noop with metrics off and pipeline-results is pipeline with job results on (results: {}), each compared with its pair"+
			"; pipeline-jq is 3 jq stages (compared with jq); io is a stage whose filter waits 10 ms per record, at concurrency 1, 16 and 256, with per-key order checked"+
			"; rss drains -rss-records through bin/millrace run, uncompressed and snappy-compressed"+
			"; latency measures each of raw, stock, noop and pipeline that is also listed (all four when none is)"+
			"; api submits jobs over HTTP to bin/millrace serve and, to compare, produces them directly")
	fs.BoolVar(&o.kafka, "kafka", false, "also run on a real Apache Kafka broker started with testkit/realkafka (needs java)")
	fs.StringVar(&o.brokers, "brokers", "", "also run on this existing Kafka cluster (host:port,...)")
	fs.BoolVar(&o.embedded, "embedded", true, "run on the embedded broker")
	fs.StringVar(&o.out, "out", "", "also write the results as Markdown to this file")
	fs.DurationVar(&o.timeout, "timeout", 5*time.Minute, "time limit of each case")
	fs.IntVar(&o.rate, "rate", 1000, "offered load of the latency case, records/s")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "how long the latency case offers its load (after a warm-up)")
	fs.IntVar(&o.rssRecords, "rss-records", 1_000_000, "backlog the rss case drains through bin/millrace, once produced uncompressed and once snappy-compressed (0 skips it)")
	fs.IntVar(&o.ioSeconds, "io-seconds", 6, "how long each run of the io case should last if it kept up: its backlog is concurrency × 100 × this (at least 600 records)")
	fs.IntVar(&o.apiRequests, "api-requests", 20_000, "jobs each throughput run of the api case submits")
	fs.IntVar(&o.apiClients, "api-clients", 64, "concurrent keep-alive HTTP clients (and direct senders) of the api case")
	fs.StringVar(&o.bin, "bin", "bin/millrace", "the millrace binary the rss and api cases run")
	fs.StringVar(&o.broker, "broker", "", "client tuning for millrace's pipelines files, as the broker block's flow mapping without braces, e.g. 'linger: 1ms, fetch_max_wait: 100ms' (millrace cases only: the raw loop keeps its config)")
	fs.StringVar(&o.cpuProfile, "cpuprofile-prefix", "", "write a CPU profile of each throughput case's drain (from starting the system to its last output record) to PREFIX-BACKEND-CASE.prof (go tool pprof)"+
		"; in the api case, of the bench process over each run's measured jobs to PREFIX-BACKEND-api-TARGET-RUN.prof and, with perf installed, of the serve process to PREFIX-BACKEND-api-TARGET-RUN.perf.data (perf report)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	o.cases = map[string]bool{}
	for _, c := range strings.Split(cases, ",") {
		c = strings.TrimSpace(c)
		if c == "" {
			continue
		}
		if !slices.Contains(allCases, c) {
			return o, fmt.Errorf("-cases: unknown case %q (cases: %s)", c, strings.Join(allCases, ","))
		}
		o.cases[c] = true
	}
	switch {
	case len(o.cases) == 0:
		return o, errors.New("-cases: no case to run")
	case o.records <= 0:
		return o, errors.New("-records must be positive")
	case o.repeat <= 0:
		return o, errors.New("-repeat must be positive")
	case o.size < minPayloadSize:
		return o, fmt.Errorf("-size must be at least %d bytes (the JSON fields the bench needs)", minPayloadSize)
	case o.partitions <= 0:
		return o, errors.New("-partitions must be positive")
	case o.keys < 0 || o.concurrency < 0 || o.rssRecords < 0:
		return o, errors.New("-keys, -concurrency and -rss-records must not be negative")
	case o.ioSeconds <= 0:
		return o, errors.New("-io-seconds must be positive")
	case o.timeout <= 0:
		return o, errors.New("-timeout must be positive")
	case o.rate <= 0 || o.duration <= 0:
		return o, errors.New("-rate and -duration must be positive")
	case o.apiRequests <= 0 || o.apiClients <= 0:
		return o, errors.New("-api-requests and -api-clients must be positive")
	case !o.embedded && !o.kafka && o.brokers == "":
		return o, errors.New("nothing to run on: -embedded=false needs -kafka or -brokers")
	case o.kafka && o.brokers != "":
		return o, errors.New("-kafka and -brokers are exclusive")
	}
	return o, nil
}

// latencySystems are the systems the latency case measures: those also
// named in -cases, or all four when none is.
func (o options) latencySystems() []string {
	all := []string{caseRaw, caseStock, caseNoop, casePipeline}
	var out []string
	for _, c := range all {
		if o.cases[c] {
			out = append(out, c)
		}
	}
	if len(out) == 0 {
		return all
	}
	return out
}

// run runs the chosen cases on each backend in turn and prints the report.
func run(ctx context.Context, o options) error {
	began := time.Now()
	m := describeMachine()
	var reports []*report
	for _, kind := range o.backendKinds() {
		if ctx.Err() != nil {
			break
		}
		b, err := startBackend(ctx, kind, o)
		if errors.Is(err, errSkipBackend) {
			fmt.Fprintf(os.Stderr, "bench: SKIPPING %s: %v\n", kind, err)
			continue
		}
		if err != nil {
			return err
		}
		r, err := runBackend(ctx, b, o)
		b.close()
		if err != nil {
			return err
		}
		reports = append(reports, r)
	}
	m.elapsed = time.Since(began)
	text := renderText(m, o, reports)
	fmt.Print(text)
	if o.out != "" {
		if err := os.WriteFile(o.out, []byte(renderMarkdown(m, o, reports)), 0o644); err != nil {
			return fmt.Errorf("write %s: %w", o.out, err)
		}
		fmt.Fprintf(os.Stderr, "bench: wrote %s\n", o.out)
	}
	if ctx.Err() != nil {
		return fmt.Errorf("interrupted: %w", ctx.Err())
	}
	return nil
}

// runBackend runs every chosen case on one backend, one after another.
func runBackend(ctx context.Context, b *backend, o options) (*report, error) {
	e, err := newEnv(ctx, o, b)
	if err != nil {
		return nil, err
	}
	defer e.close()
	r := &report{backend: b}
	e.logf("== %s: %s", b.name, b.describe)
	// A first drain, not reported, so that no case pays for what a fresh
	// broker does once: creating __consumer_offsets on the first group,
	// and on real Kafka the JVM's JIT warm-up.
	warm := &system{name: "warmup", label: "warm-up, not reported (raw loop)", run: runRaw}
	if w := runDrain(ctx, e, warm, min(o.records, 50_000)); !w.complete() {
		e.logf("warning: the warm-up did not complete: %s", w.status())
	}
	// Rounds over the cases, so that a slow spell of the machine hits
	// every case alike; each case reports its median run.
	runs := map[string][]drainResult{}
	var throughput []string
	backlog := map[string]int{}
	for _, name := range []string{caseRaw, caseStock, caseNoop, caseNoMetric, caseJQ, casePipeline, casePipeJQ, casePipeRes} {
		if o.cases[name] {
			throughput = append(throughput, name)
			backlog[name] = o.records
		}
	}
	if o.cases[caseIO] {
		for _, c := range ioConcurrencies {
			throughput = append(throughput, ioName(c))
			backlog[ioName(c)] = ioRecords(c, o.ioSeconds)
		}
	}
	for round := 0; round < o.repeat; round++ {
		for _, name := range throughput {
			if ctx.Err() == nil {
				runs[name] = append(runs[name], runDrain(ctx, e, systems[name], backlog[name]))
			}
		}
	}
	for _, name := range throughput {
		if len(runs[name]) > 0 {
			r.drains = append(r.drains, median(runs[name]))
		}
	}
	if o.cases[caseLatency] {
		// Rounds again: a broker GC pause or a stall of the machine lands
		// in some runs and not others, so one run's p99 is not the figure.
		lats := map[string][]latencyResult{}
		for round := 0; round < o.repeat; round++ {
			for _, name := range o.latencySystems() {
				if ctx.Err() == nil {
					lats[name] = append(lats[name], runLatency(ctx, e, systems[name]))
				}
			}
		}
		for _, name := range o.latencySystems() {
			if len(lats[name]) > 0 {
				r.latencies = append(r.latencies, medianLatency(lats[name]))
			}
		}
	}
	if o.cases[caseAPI] && ctx.Err() == nil {
		res := runAPI(ctx, e)
		r.api = &res
	}
	if o.cases[caseRSS] && o.rssRecords > 0 {
		for _, snappy := range []bool{false, true} {
			if ctx.Err() == nil {
				r.rss = append(r.rss, runRSS(ctx, e, snappy))
			}
		}
	}
	return r, nil
}

// backendKinds lists the backends to run on, in order.
func (o options) backendKinds() []string {
	var kinds []string
	if o.embedded {
		kinds = append(kinds, backendEmbedded)
	}
	switch {
	case o.kafka:
		kinds = append(kinds, backendRealKafka)
	case o.brokers != "":
		kinds = append(kinds, backendExternal)
	}
	return kinds
}
