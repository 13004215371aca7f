package main

import (
	"bufio"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Targets of the issue.
const (
	targetVsStock     = 5.0    // no-op stage ≥ 5× the stock watermill-kafka stage
	targetVsRaw       = 0.5    // no-op stage ≥ 50% of raw sarama
	targetMetrics     = 0.95   // no-op stage with metrics ≥ 95% of the same without
	targetResults     = 0.70   // 3-stage pipeline with job results ≥ 70% of the same without
	targetPipeline    = 50_000 // 3-stage pipeline records/s
	targetPipeJQ      = 0.45   // 3-stage jq pipeline ≥ 45% of the single jq stage
	targetJQCPU       = 4.0    // jq stage CPU/record ≤ 4× the raw loop's
	targetNoopCPU     = 2.5    // no-op stage CPU/record ≤ 2.5× the raw loop's
	targetBrokerJQ    = 6 * time.Microsecond
	targetIO          = 0.80                  // io stage ≥ 80% of concurrency × 100 records/s
	targetP99         = 10 * time.Millisecond // embedded broker (issue 19: "stays < 10 ms")
	targetP99Kafka    = 15 * time.Millisecond // a real Kafka broker (issue 19)
	targetRSSMB       = 300.0
	targetRSSRecords  = 1_000_000
	targetLatencyRate = 1000
	targetAPIVsDirect = 0.5 // HTTP API submissions ≥ 50% of direct produce
	targetAPIP99      = 50 * time.Millisecond
)

// machine describes where the bench ran.
type machine struct {
	cpu     string
	cores   int
	goVer   string
	osArch  string
	date    time.Time
	elapsed time.Duration
}

// describeMachine reads the CPU model from /proc/cpuinfo.
func describeMachine() machine {
	m := machine{cpu: "unknown CPU", cores: runtime.NumCPU(), goVer: runtime.Version(),
		osArch: runtime.GOOS + "/" + runtime.GOARCH, date: time.Now()}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		defer f.Close()
		s := bufio.NewScanner(f)
		for s.Scan() {
			if name, value, ok := strings.Cut(s.Text(), ":"); ok && strings.TrimSpace(name) == "model name" {
				m.cpu = strings.TrimSpace(value)
				break
			}
		}
	}
	return m
}

// report is what one backend's cases measured.
type report struct {
	backend   *backend
	drains    []drainResult
	latencies []latencyResult
	rss       []rssResult // uncompressed, then snappy input
	api       *apiResult
}

// rssRun is the rss case's run with the input compressed or not, or nil.
func (r *report) rssRun(snappy bool) *rssResult {
	for i := range r.rss {
		if r.rss[i].snappy == snappy {
			return &r.rss[i]
		}
	}
	return nil
}

func (r *report) drain(name string) *drainResult {
	for i := range r.drains {
		if r.drains[i].sys.name == name {
			return &r.drains[i]
		}
	}
	return nil
}

func (r *report) latency(name string) *latencyResult {
	for i := range r.latencies {
		if r.latencies[i].sys.name == name {
			return &r.latencies[i]
		}
	}
	return nil
}

// row is one line of the results table.
type row struct {
	label                        string
	rate, steady, drain, startup string
	cpu                          string // CPU time per record
	p50, p99, max, status        string
	runs                         string // range of the runs' records/s
}

// rows joins each system's throughput and latency results.
func (r *report) rows() []row {
	var rows []row
	for _, name := range []string{caseRaw, caseStock, caseNoop, caseJQ, casePipeline, casePipeJQ, casePipeRes} {
		d, l := r.drain(name), r.latency(name)
		if d == nil && l == nil {
			continue
		}
		w := row{label: systems[name].label, rate: "-", steady: "-", drain: "-", startup: "-",
			cpu: "-", p50: "-", p99: "-", max: "-", runs: "-"}
		var status []string
		if d != nil {
			if d.complete() {
				w.rate, w.steady = fmtRate(d.rate()), fmtRate(d.steadyRate())
				w.drain, w.startup = fmtDur(d.elapsed), fmtDur(d.startup)
				w.cpu = fmtCPU(d.cpuPerRecord())
				if n := len(d.rates); n > 1 {
					w.runs = fmt.Sprintf("%s–%s (%d)", fmtRate(d.rates[0]), fmtRate(d.rates[n-1]), n)
				}
			}
			status = append(status, d.status())
		}
		if l != nil {
			if l.complete() {
				w.p50, w.p99, w.max = fmtMs(l.p50), fmtMs(l.p99), fmtMs(l.max)
			}
			if s := l.status(); s != "ok" || d == nil {
				status = append(status, "latency: "+s)
			}
		}
		w.status = strings.Join(status, "; ")
		rows = append(rows, w)
	}
	return rows
}

// cpuRatios compares each case's CPU per record with the raw loop's, e.g.
// "no-op 2.6x, 3 stages 7.9x"; empty without a raw figure.
func (r *report) cpuRatios() string {
	var parts []string
	for _, c := range []struct{ name, short string }{{caseStock, "stock"}, {caseNoop, "no-op"}, {caseJQ, "jq"}, {casePipeline, "3 stages"}, {casePipeJQ, "3 jq stages"}, {casePipeRes, "3 stages with results"}} {
		if v := r.cpuRatio(c.name); v > 0 {
			parts = append(parts, fmt.Sprintf("%s %.1fx", c.short, v))
		}
	}
	return strings.Join(parts, ", ")
}

// cpuRatio is the CPU per record of case name over the raw loop's in the
// same run, or 0.
func (r *report) cpuRatio(name string) float64 {
	raw, d := r.drain(caseRaw), r.drain(name)
	if raw == nil || !raw.complete() || raw.cpuPerRecord() == 0 || d == nil || !d.complete() || d.cpuPerRecord() == 0 {
		return 0
	}
	return float64(d.cpuPerRecord()) / float64(raw.cpuPerRecord())
}

// usageRow is one line of the table of what each drain used per record.
type usageRow struct {
	label, cpu, broker, total, busy, allocs, bytes string
	requests                                       string
	apis                                           []string // per record, for mainAPIs
	other                                          string
}

// usageRows are what each throughput case's drain (its median run) used
// per record: CPU, the broker's CPU, allocations and Kafka requests.
func (r *report) usageRows() []usageRow {
	var rows []usageRow
	for _, d := range r.drains {
		w := usageRow{label: d.sys.label, cpu: "-", broker: "-", total: "-", busy: "-", allocs: "-", bytes: "-", requests: "-", other: "-"}
		for range mainAPIs {
			w.apis = append(w.apis, "-")
		}
		if !d.complete() {
			rows = append(rows, w)
			continue
		}
		w.cpu = fmtCPU(d.cpuPerRecord())
		switch {
		case r.backend.inProcess:
			w.broker = "in process"
			w.total = w.cpu
		case d.use.brokerMeasured:
			w.broker = fmtCPU(d.brokerPerRecord()) + d.jitNote()
			if d.use.broker == 0 {
				w.broker = "< 10 ms in all"
			}
			if d.cpu > 0 {
				w.total = fmtCPU(d.cpuPerRecord() + d.brokerPerRecord())
			}
		}
		if b := d.coresBusy(); b > 0 {
			w.busy = fmt.Sprintf("%.2f", b)
			if m := d.machineBusy(); m > 0 {
				w.busy += fmt.Sprintf(" / %.2f", m)
			}
		}
		if u := d.use; u.allocs {
			w.allocs = fmt.Sprintf("%.1f", d.perRecord(float64(u.objects)))
			w.bytes = fmtBytes(d.perRecord(float64(u.bytes)))
		}
		if u := d.use; u.counted {
			all := totalRequests(u.requests)
			w.requests = fmtPer(d.perRecord(float64(all)))
			rest := all
			for i, k := range mainAPIs {
				w.apis[i] = fmtPer(d.perRecord(float64(u.requests[k])))
				rest -= u.requests[k]
			}
			w.other = fmtPer(d.perRecord(float64(rest)))
		}
		rows = append(rows, w)
	}
	return rows
}

// usageHeader are the usage table's column names.
func usageHeader() []string {
	h := []string{"case", "CPU/record", "broker CPU/record", "stage+broker", "cores busy", "allocs/record", "allocated/record", "requests/record"}
	for _, k := range mainAPIs {
		h = append(h, apiName(k))
	}
	return append(h, "other")
}

// cells are the row's columns in usageHeader's order.
func (w usageRow) cells() []string {
	c := []string{w.label, w.cpu, w.broker, w.total, w.busy, w.allocs, w.bytes, w.requests}
	c = append(c, w.apis...)
	return append(c, w.other)
}

// otherRequestsLine names the requests of the other APIs over each drain.
func (r *report) otherRequestsLine() string {
	var parts []string
	for _, d := range r.drains {
		if d.complete() && d.use.counted {
			if o := otherRequests(d.use.requests); o != "" {
				parts = append(parts, d.sys.name+": "+o)
			}
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return "other Kafka requests over each drain (counts): " + strings.Join(parts, "; ")
}

// ioRow is one line of the io case's table.
type ioRow struct {
	label, concurrency, records, keys, rate, ofMax, cpu, cores, machine, order, status string
}

// ioDrains are the io case's drains, by concurrency.
func (r *report) ioDrains() []*drainResult {
	var ds []*drainResult
	for _, c := range ioConcurrencies {
		if d := r.drain(ioName(c)); d != nil {
			ds = append(ds, d)
		}
	}
	return ds
}

// ioMax is the records/s an io stage of concurrency c could move if the
// filter's wait were all its time: c × 100.
func ioMax(c int) float64 { return float64(c) * float64(time.Second/ioWait) }

// ioShare is the drain's records/s over ioMax, or 0.
func ioShare(d *drainResult) float64 {
	return d.rate() / ioMax(d.sys.concurrency)
}

// cpuBound says whether the machine's cores were (nearly) all busy over a
// drain: at least 90% of their time, whoever used it (the bench process, a
// broker, and others sharing the machine); without that figure, the bench
// process and a broker process alone.
func cpuBound(d *drainResult) bool {
	busy := d.machineBusy()
	if busy == 0 {
		busy = d.coresBusy()
	}
	return busy >= 0.9*float64(runtime.NumCPU())
}

// cpuNote is the CPU figure of a drain that fell short: whether it was
// CPU-bound, how many cores the machine and the bench kept busy, the CPU
// per record.
func cpuNote(d *drainResult) string {
	s := "not CPU-bound"
	if cpuBound(d) {
		s = "CPU-bound"
	}
	if m := d.machineBusy(); m > 0 {
		s += fmt.Sprintf(": the machine %.2f of %d cores busy, the bench", m, runtime.NumCPU())
	} else {
		s += ": the bench"
	}
	if d.use.brokerMeasured {
		s += " and the broker"
	}
	return s + fmt.Sprintf(" %.2f, %s CPU/record", d.coresBusy(), fmtCPU(d.cpuPerRecord()))
}

// ioRows are the io case's runs.
func (r *report) ioRows() []ioRow {
	var rows []ioRow
	for _, d := range r.ioDrains() {
		w := ioRow{label: d.sys.label, concurrency: fmt.Sprint(d.sys.concurrency), records: fmtCount(d.n), keys: fmtCount(d.keys),
			rate: "-", ofMax: "-", cpu: "-", cores: "-", machine: "-", order: "-", status: d.status()}
		if d.complete() {
			w.rate = fmtRate(d.rate())
			w.ofMax = fmt.Sprintf("%.0f%% of %s", 100*ioShare(d), fmtRate(ioMax(d.sys.concurrency)))
			w.cpu = fmtCPU(d.cpuPerRecord())
			if v := d.coresBusy(); v > 0 {
				w.cores = fmt.Sprintf("%.2f", v)
			}
			if m := d.machineBusy(); m > 0 {
				w.machine = fmt.Sprintf("%.2f of %d", m, runtime.NumCPU())
			}
		}
		if d.order != nil {
			w.order = fmt.Sprintf("%d violations", d.order.violations)
			if d.order.repeats > 0 {
				w.order += fmt.Sprintf(", %d repeats", d.order.repeats)
			}
		}
		rows = append(rows, w)
	}
	return rows
}

// ioHeading says what the io case measures.
func (r *report) ioHeading(o options) string {
	return fmt.Sprintf("I/O-bound stage (io): a filter that waits 10 ms per record (a timer, no CPU), at stage concurrency %s; "+
		"each backlog is concurrency × 100 × %d records (at least 600), keyed over %s or a tenth of the records if fewer (so every key has 10 records or more for the order check); "+
		"concurrency is per stage and process (one pool of slots shared by every partition the process holds: router/stage.go, router/sem.go), "+
		"max_in_flight, set to the concurrency, per partition (transport/window.go)",
		strings.Trim(strings.Join(strings.Fields(fmt.Sprint(ioConcurrencies)), ", "), "[]"), o.ioSeconds, keysText(o))
}

// ratio is a/b of two complete drains' rates, or 0.
func (r *report) ratio(a, b string) float64 {
	da, db := r.drain(a), r.drain(b)
	if da == nil || db == nil || da.rate() == 0 || db.rate() == 0 {
		return 0
	}
	return da.rate() / db.rate()
}

// steadyRatio is a/b of two complete drains' steady rates, or 0.
func (r *report) steadyRatio(a, b string) float64 {
	da, db := r.drain(a), r.drain(b)
	if da == nil || db == nil || da.steadyRate() == 0 || db.steadyRate() == 0 {
		return 0
	}
	return da.steadyRate() / db.steadyRate()
}

// target is one line of the targets table.
type target struct{ name, measured, verdict string }

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "missed"
}

// targets compares the results with the targets.
func (r *report) targets(o options) []target {
	var ts []target
	add := func(name string, measured float64, format func(float64) string, ok func(float64) bool, note string) {
		t := target{name: name, measured: "not measured", verdict: "n/a"}
		if measured > 0 {
			t.measured, t.verdict = format(measured)+note, verdict(ok(measured))
		}
		ts = append(ts, t)
	}
	// Ratios are judged on records/s as the issue defines it; the ratio of
	// steady rates (without the startup) is shown beside it.
	steady := func(a, b string, format func(float64) string) string {
		if v := r.steadyRatio(a, b); v > 0 {
			return " (steady " + format(v) + ")"
		}
		return ""
	}
	times := func(v float64) string { return fmt.Sprintf("%.2f×", v) }
	percent := func(v float64) string { return fmt.Sprintf("%.0f%%", 100*v) }
	add("millrace no-op stage ≥ 5× stock watermill-kafka stage (c/b)", r.ratio(caseNoop, caseStock),
		times, func(v float64) bool { return v >= targetVsStock }, steady(caseNoop, caseStock, times))
	add("millrace no-op stage ≥ 50% of raw sarama (c/a)", r.ratio(caseNoop, caseRaw),
		percent, func(v float64) bool { return v >= targetVsRaw }, steady(caseNoop, caseRaw, percent))
	add("metrics cost: no-op stage with metrics ≥ 95% of it without (c/c')", r.ratio(caseNoop, caseNoMetric),
		percent, func(v float64) bool { return v >= targetMetrics }, steady(caseNoop, caseNoMetric, percent))
	add("job results cost: 3-stage pipeline with results ≥ 70% of it without (d'/d)", r.ratio(casePipeRes, casePipeline),
		percent, func(v float64) bool { return v >= targetResults }, steady(casePipeRes, casePipeline, percent))
	var pipeRate float64
	if d := r.drain(casePipeline); d != nil {
		pipeRate = d.rate()
	}
	add("3-stage pipeline ≥ 50,000 records/s", pipeRate,
		func(v float64) string { return fmtRate(v) + " records/s" }, func(v float64) bool { return v >= targetPipeline }, "")
	add("3-stage jq pipeline ≥ 45% of the single jq stage's records/s (d''/c jq)", r.ratio(casePipeJQ, caseJQ),
		percent, func(v float64) bool { return v >= targetPipeJQ }, steady(casePipeJQ, caseJQ, percent))
	add("jq stage CPU/record ≤ 4× raw", r.cpuRatio(caseJQ),
		times, func(v float64) bool { return v <= targetJQCPU }, "")
	add("no-op stage CPU/record ≤ 2.5× raw", r.cpuRatio(caseNoop),
		times, func(v float64) bool { return v <= targetNoopCPU }, "")
	broker := target{name: "broker CPU per record serving the jq stage ≤ 6 µs (real Kafka)", measured: "not measured", verdict: "n/a"}
	if d := r.drain(caseJQ); d != nil && d.complete() {
		switch {
		case r.backend.inProcess:
			broker.measured = "in process (not separable)"
		case d.use.brokerMeasured:
			broker.measured = fmtCPU(d.brokerPerRecord()) + d.jitNote()
			if d.use.broker == 0 {
				broker.measured = "< 10 ms in all"
			}
			broker.measured += fmt.Sprintf(" (stage+broker %s)", fmtCPU(d.cpuPerRecord()+d.brokerPerRecord()))
			broker.verdict = verdict(d.brokerPerRecord() <= targetBrokerJQ)
		}
	}
	ts = append(ts, broker)
	var p99 float64
	note := ""
	if l := r.latency(casePipeline); l != nil && l.complete() {
		p99 = l.p99.Seconds()
		if o.rate != targetLatencyRate {
			note = fmt.Sprintf(" (at %d records/s)", o.rate)
		}
		if n := l.runsNote(); n != "" {
			note += " (" + n + ")"
		}
		if n := l.pausesNote(); n != "" {
			note += " (" + n + ")"
		}
	}
	want := targetP99
	if r.backend.name != "embedded" {
		want = targetP99Kafka
	}
	add(fmt.Sprintf("p99 through 3 stages < %s at 1,000 records/s", fmtMs(want)), p99,
		func(v float64) string { return fmtMs(time.Duration(v * float64(time.Second))) },
		func(v float64) bool { return v < want.Seconds() }, note)
	for _, c := range ioConcurrencies {
		var share float64
		note = ""
		if d := r.drain(ioName(c)); d != nil && d.complete() {
			share = ioShare(d)
			note = fmt.Sprintf(" (%s of %s records/s)", fmtRate(d.rate()), fmtRate(ioMax(c)))
			if share < targetIO {
				note += " — " + cpuNote(d)
			}
		}
		add(fmt.Sprintf("I/O-bound stage (10 ms/record), concurrency %d ≥ 80%% of %s records/s, up to what the CPU allows", c, fmtCount(int(ioMax(c)))), share,
			percent, func(v float64) bool { return v >= targetIO }, note)
	}
	for _, snappy := range []bool{false, true} {
		var peak float64
		note = ""
		x := r.rssRun(snappy)
		if x != nil && x.complete() {
			peak = x.peakMB
			if x.n != targetRSSRecords {
				note = fmt.Sprintf(" (with %s records)", fmtCount(x.n))
			}
		}
		input := "uncompressed"
		if snappy {
			input = "snappy input"
		}
		add("peak RSS < 300 MB draining 1,000,000 records, "+input, peak,
			func(v float64) string { return fmt.Sprintf("%.1f MB", v) }, func(v float64) bool { return v < targetRSSMB }, note)
	}
	var apiRatio, apiP99 float64
	note, p99Note := "", ""
	if a := r.api; a != nil {
		apiRatio = a.ratio(true)
		if v := a.ratio(false); v > 0 {
			note = " (without results f'/e " + percent(v) + ")"
		}
		if l := a.httpAtRate; l.complete() {
			apiP99 = l.p99.Seconds()
			if o.rate != targetLatencyRate {
				p99Note = fmt.Sprintf(" (at %d requests/s)", o.rate)
			}
		}
	}
	add("HTTP API ≥ 50% of direct produce throughput (f/e)", apiRatio,
		percent, func(v float64) bool { return v >= targetAPIVsDirect }, note)
	add("HTTP API p99 < 50 ms at 1,000 requests/s", apiP99,
		func(v float64) string { return fmtMs(time.Duration(v * float64(time.Second))) },
		func(v float64) bool { return v < targetAPIP99.Seconds() }, p99Note)
	return ts
}

// apiRow is one line of the api case's table.
type apiRow struct {
	label, rate, runs, p50, p99, max  string
	benchCPU, serveCPU, conns, status string
}

// apiRows are the api case's runs: the median closed-loop run of each
// target, then the open-loop runs.
func (r *report) apiRows(o options) []apiRow {
	a := r.api
	if a == nil {
		return nil
	}
	atRate := fmt.Sprintf(", open loop at %s/s", fmtCount(o.rate))
	var rows []apiRow
	for _, x := range []struct {
		run   apiRun
		label string
	}{
		{a.direct, apiDirect.label}, {a.http, apiHTTP.label}, {a.httpNoResults, apiHTTPNoResults.label},
		{a.httpAtRate, apiHTTP.label + atRate}, {a.directAtRate, apiDirect.label + atRate},
	} {
		run := x.run
		if run.n == 0 {
			continue
		}
		w := apiRow{label: x.label, rate: "-", runs: "-", p50: "-", p99: "-", max: "-",
			benchCPU: "-", serveCPU: "-", conns: "-", status: run.status()}
		if run.complete() {
			w.rate = fmtRate(run.rate())
			if run.offered > 0 {
				w.rate = fmtRate(run.offered) + " offered"
			}
			if n := len(run.rates); n > 1 {
				w.runs = fmt.Sprintf("%s–%s (%d)", fmtRate(run.rates[0]), fmtRate(run.rates[n-1]), n)
			}
			w.p50, w.p99, w.max = fmtMs(run.p50), fmtMs(run.p99), fmtMs(run.max)
			w.benchCPU, w.serveCPU = fmtCPU(run.perJob(run.benchCPU)), fmtCPU(run.perJob(run.serveCPU))
			if run.target.http {
				w.conns = fmt.Sprintf("%d + %d", run.warmConns, run.conns)
			}
		}
		rows = append(rows, w)
	}
	return rows
}

// apiHeading says what the api case's table holds.
func (r *report) apiHeading(o options) string {
	return fmt.Sprintf("HTTP jobs API (api): %s jobs × %d B from %d concurrent keep-alive clients, %s; then %s jobs/s for %s, open loop; "+
		"bin/millrace serve for a pipeline whose stages are not running",
		fmtCount(r.api.jobs), o.size, r.api.clients, runsText(o), fmtCount(o.rate), o.duration)
}

// apiLines are the api case's ratios and its p99 at -rate.
func (r *report) apiLines(o options) []string {
	a := r.api
	var ls []string
	ratio := func(results bool) string {
		if v := a.ratio(results); v > 0 {
			return fmt.Sprintf("%.2f", v)
		}
		return "n/a"
	}
	ls = append(ls, fmt.Sprintf("ratio of jobs/s, HTTP API over direct produce: with results f/e %s, without f'/e %s", ratio(true), ratio(false)))
	if l := a.httpAtRate; l.n > 0 {
		if l.complete() {
			ls = append(ls, fmt.Sprintf("p99 of the HTTP API at %s requests/s (offered %s, open loop, from each job's scheduled send): %s (p50 %s, max %s, %s jobs; the sender was at most %s behind schedule)",
				fmtCount(o.rate), fmtRate(l.offered), fmtMs(l.p99), fmtMs(l.p50), fmtMs(l.max), fmtCount(l.n), fmtMs(l.lag)))
		} else {
			ls = append(ls, "p99 of the HTTP API at a fixed rate: "+l.status())
		}
	}
	return ls
}

// header is the lines above the tables.
func header(m machine, o options) []string {
	return []string{
		"millrace bench, " + m.date.Format("2006-01-02 15:04 MST"),
		fmt.Sprintf("machine: %s, %d cores (GOMAXPROCS %d), %s, %s", m.cpu, m.cores, runtime.GOMAXPROCS(0), m.osArch, m.goVer),
		fmt.Sprintf("workload: %s records × %d B per throughput case, %d partitions, %s, %s; latency at %s records/s for %s after a warm-up; the run took %s",
			fmtCount(o.records), o.size, o.partitions, keysText(o), runsText(o), fmtCount(o.rate), o.duration, fmtDur(m.elapsed)),
	}
}

func runsText(o options) string {
	if o.repeat <= 1 {
		return "one run per case"
	}
	return fmt.Sprintf("%d interleaved runs per throughput and latency case (median shown)", o.repeat)
}

func keysText(o options) string {
	if o.keys == 0 {
		return "no keys"
	}
	return fmtCount(o.keys) + " keys"
}

// notes explain the columns.
var notes = []string{
	"records/s: the backlog over the time from starting the system to its last output record (the output's log end, polled every 5 ms);",
	"  steady/s leaves out the startup (start → first output record: joining the group, creating topics).",
	"runs: the lowest and highest records/s of the case's runs; records/s, steady/s, drain, CPU/record and the ratios are those of the median run.",
	"CPU/record: user+system CPU time of the bench process from starting the system to its last output record, per record; it includes the",
	"  embedded broker (in the process) but not a real Kafka broker. Over 1/(records/s) it says how many cores the case kept busy.",
	"  millrace's cases run with the garbage collector as millrace run sets it (GOGC=200, internal/gctune; unless GOGC is set);",
	"  the raw and stock loops with Go's default (GOGC=100).",
	"broker CPU/record: a real Kafka broker's JVM (/proc, 10 ms ticks) over the same span, less its JIT compiler threads (C1/C2 CompilerThread),",
	"  which are shown apart (+ JIT): a fresh JVM compiles for minutes, and what it spends so depends on what it has compiled before,",
	"  not on the records (a long-running broker has done it); stage+broker adds the rest to CPU/record. It includes serving the",
	"  bench's log-end poll (a ListOffsets every 5 ms) and the broker's own background work, which weigh more in a short drain.",
	"  With the embedded broker it is in process: in CPU/record, not separable.",
	"allocs/record, allocated/record: heap allocations of the bench process over the same span (runtime/metrics /gc/heap/allocs:objects,",
	"  :bytes), per record; with the embedded broker they include the broker's, as CPU does.",
	"requests/record: Kafka requests the system's own clients sent over the same span (millrace and the raw loop: transport.KafkaRequests;",
	"  stock: its sarama registries), per record, in all and for Produce, Fetch and OffsetCommit; the bench's helpers are not counted.",
	"p50/p99/max: producer stamp in the payload → read by a consumer of the output topic, at a fixed offered load, after a warm-up; of several runs, the one with the median p99.",
	"Every figure is printed only after the output topic was read back and held every record (distinct ids); else INCOMPLETE.",
}

// apiNotes explain the api case's table.
var apiNotes = []string{
	"api: jobs/s is the jobs over the time from the first send to the last answer (202 or, direct, the ack); p50/p99/max per job,",
	"  send → answer. Closed loop: each client sends its next job once its last was answered. Open loop: each job is sent at its",
	"  scheduled time whatever the answers take, and timed from that time (no coordinated omission). (e) produces the same records",
	"  (same size and keys) with one transport.Publisher (millrace's producer: sarama AsyncProducer, idempotent, acks=all), one",
	"  sender per client each waiting for its record's ack; (f) also writes each job's accepted event first and serve follows them.",
	"  bench CPU/job: the bench process (the clients, and the embedded broker); serve CPU/job: the serve process (/proc, 10 ms ticks).",
	"  connections: those the HTTP client opened in the warm-up + over the measured jobs (keep-alive: 0 after the warm-up in a closed loop).",
	"  Every run reads the input topic back: it must hold every accepted job's record; with results, the events topic their events.",
}

// notesFor are the notes of the cases run.
func notesFor(o options) []string {
	if o.cases[caseAPI] {
		return append(slices.Clone(notes), apiNotes...)
	}
	return notes
}

// renderText is the plain-text report.
func renderText(m machine, o options, reports []*report) string {
	var b strings.Builder
	b.WriteString("\n")
	for _, l := range header(m, o) {
		b.WriteString(l + "\n")
	}
	for _, r := range reports {
		fmt.Fprintf(&b, "\n== %s: %s\n\n", r.backend.name, r.backend.describe)
		tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
		if rows := r.rows(); len(rows) > 0 {
			fmt.Fprintln(tw, "case\trecords/s\truns\tsteady/s\tdrain\tstartup\tCPU/record\tp50\tp99\tmax\tstatus")
			for _, w := range rows {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n",
					w.label, w.rate, w.runs, w.steady, w.drain, w.startup, w.cpu, w.p50, w.p99, w.max, w.status)
			}
		}
		tw.Flush()
		for _, l := range r.extraLines(o) {
			b.WriteString(l + "\n")
		}
		for _, t := range r.extraTables(o) {
			b.WriteString("\n" + t.heading + "\n\n")
			tw = tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, strings.Join(t.header, "\t"))
			for _, c := range t.rows {
				fmt.Fprintln(tw, strings.Join(c, "\t"))
			}
			tw.Flush()
			for _, l := range t.lines {
				b.WriteString(l + "\n")
			}
		}
		if rows := r.apiRows(o); len(rows) > 0 {
			if len(r.rows()) > 0 || len(r.extraLines(o)) > 0 {
				b.WriteString("\n")
			}
			b.WriteString(r.apiHeading(o) + "\n\n")
			tw = tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "case\tjobs/s\truns\tp50\tp99\tmax\tbench CPU/job\tserve CPU/job\tconnections\tstatus")
			for _, w := range rows {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n",
					w.label, w.rate, w.runs, w.p50, w.p99, w.max, w.benchCPU, w.serveCPU, w.conns, w.status)
			}
			tw.Flush()
			for _, l := range r.apiLines(o) {
				b.WriteString(l + "\n")
			}
		}
		b.WriteString("\n")
		tw = tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "target\tmeasured\t")
		for _, t := range r.targets(o) {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", t.name, t.measured, t.verdict)
		}
		tw.Flush()
	}
	b.WriteString("\n")
	for _, n := range notesFor(o) {
		b.WriteString(n + "\n")
	}
	return b.String()
}

// renderMarkdown is the report as Markdown.
func renderMarkdown(m machine, o options, reports []*report) string {
	var b strings.Builder
	b.WriteString("## " + header(m, o)[0] + "\n\n")
	for _, l := range header(m, o)[1:] {
		b.WriteString("- " + l + "\n")
	}
	for _, r := range reports {
		fmt.Fprintf(&b, "\n### %s\n\n%s\n\n", r.backend.name, r.backend.describe)
		if rows := r.rows(); len(rows) > 0 {
			b.WriteString("| case | records/s | runs | steady/s | drain | startup | CPU/record | p50 | p99 | max | status |\n")
			b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n")
			for _, w := range rows {
				fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n",
					w.label, w.rate, w.runs, w.steady, w.drain, w.startup, w.cpu, w.p50, w.p99, w.max, mdEscape(w.status))
			}
			b.WriteString("\n")
		}
		for _, l := range r.extraLines(o) {
			b.WriteString("- " + l + "\n")
		}
		for _, t := range r.extraTables(o) {
			b.WriteString("\n" + t.heading + "\n\n")
			b.WriteString("| " + strings.Join(t.header, " | ") + " |\n|---|")
			b.WriteString(strings.Repeat("---:|", len(t.header)-2) + "---|\n")
			for _, c := range t.rows {
				esc := make([]string, len(c))
				for i, v := range c {
					esc[i] = mdEscape(v)
				}
				b.WriteString("| " + strings.Join(esc, " | ") + " |\n")
			}
			b.WriteString("\n")
			for _, l := range t.lines {
				b.WriteString("- " + l + "\n")
			}
		}
		if rows := r.apiRows(o); len(rows) > 0 {
			if len(r.rows()) > 0 || len(r.extraLines(o)) > 0 {
				b.WriteString("\n")
			}
			b.WriteString(r.apiHeading(o) + "\n\n")
			b.WriteString("| case | jobs/s | runs | p50 | p99 | max | bench CPU/job | serve CPU/job | connections | status |\n")
			b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|\n")
			for _, w := range rows {
				fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n",
					w.label, w.rate, w.runs, w.p50, w.p99, w.max, w.benchCPU, w.serveCPU, w.conns, mdEscape(w.status))
			}
			b.WriteString("\n")
			for _, l := range r.apiLines(o) {
				b.WriteString("- " + l + "\n")
			}
		}
		b.WriteString("\n| target | measured | |\n|---|---:|---|\n")
		for _, t := range r.targets(o) {
			fmt.Fprintf(&b, "| %s | %s | %s |\n", t.name, t.measured, t.verdict)
		}
	}
	b.WriteString("\n")
	for _, n := range notesFor(o) {
		b.WriteString(strings.TrimSpace(n) + "\n")
	}
	return b.String()
}

// extraLines are the ratios, the 3-stage p99 and the RSS, under the table.
func (r *report) extraLines(o options) []string {
	var ls []string
	ratio := func(a, b string) string {
		v := r.ratio(a, b)
		if v == 0 {
			return "n/a"
		}
		return fmt.Sprintf("%.2f (steady %.2f)", v, r.steadyRatio(a, b))
	}
	if r.drain(caseNoop) != nil || r.drain(caseJQ) != nil {
		ls = append(ls, fmt.Sprintf("ratios of records/s: no-op c/a %s, c/b %s; jq c/a %s, c/b %s",
			ratio(caseNoop, caseRaw), ratio(caseNoop, caseStock), ratio(caseJQ, caseRaw), ratio(caseJQ, caseStock)))
	}
	if c := r.cpuRatios(); c != "" {
		ls = append(ls, "CPU per record relative to raw sarama: "+c)
	}
	if d := r.drain(casePipeRes); d != nil && d.checkNote() != "" {
		ls = append(ls, "job results of (d'), its median run: "+d.checkNote())
	}
	if l := r.latency(casePipeline); l != nil {
		if l.complete() {
			line := fmt.Sprintf("p99 through 3 stages at %s records/s (offered %s): %s (p50 %s, max %s, %s records)",
				fmtCount(o.rate), fmtRate(l.offered), fmtMs(l.p99), fmtMs(l.p50), fmtMs(l.max), fmtCount(l.want))
			if n := l.runsNote(); n != "" {
				line += "; " + n
			}
			if n := l.pausesNote(); n != "" {
				line += "; meanwhile the " + n
			}
			ls = append(ls, line)
		} else {
			ls = append(ls, "p99 through 3 stages: "+l.status())
		}
	}
	for _, l := range r.latencies {
		if n := l.busyNote(); n != "" && l.complete() {
			ls = append(ls, fmt.Sprintf("latency case, %s, over its measured records (median run): %s", l.sys.label, n))
		}
	}
	for _, x := range r.rss {
		input := "uncompressed"
		if x.snappy {
			input = fmt.Sprintf("produced snappy-compressed in batches of up to %d KiB per partition, linger %s, a Java producer's defaults",
				javaBatchBytes>>10, javaLinger)
		}
		if x.inputBytes > 0 {
			input += fmt.Sprintf("; %.1f MB on the broker, %.0f B per record", float64(x.inputBytes)/1e6, float64(x.inputBytes)/float64(x.n))
		}
		if x.complete() {
			ls = append(ls, fmt.Sprintf("peak RSS of `bin/millrace run` draining %s records (%s) through one jq '.' stage: %.1f MB (VmHWM; VmRSS at the end %.1f MB; drained at %s records/s)",
				fmtCount(x.n), input, x.peakMB, x.rssMB, fmtRate(float64(x.n)/x.elapsed.Seconds())))
		} else {
			ls = append(ls, fmt.Sprintf("peak RSS, %s: %s", x.input(), x.status()))
		}
	}
	return ls
}

// table is a table of the report besides the main one: a heading, the
// columns (the first is the case, the last is left-aligned in Markdown,
// the others right-aligned), and lines under it.
type table struct {
	heading string
	header  []string
	rows    [][]string
	lines   []string
}

// extraTables are what each drain used per record and the io case.
func (r *report) extraTables(o options) []table {
	var ts []table
	if rows := r.usageRows(); len(rows) > 0 {
		t := table{heading: "Per record, over each throughput case's drain (start → last output record; median run):", header: usageHeader()}
		for _, w := range rows {
			t.rows = append(t.rows, w.cells())
		}
		if r.backend.inProcess {
			t.lines = append(t.lines, "CPU, allocations: the bench process, which holds the embedded broker, so both include the broker's work (as the broker CPU says, in process).")
		}
		t.lines = append(t.lines, fmt.Sprintf("cores busy: the bench's (and a real broker's) CPU time over the drain's time / every core's busy time in /proc/stat, whoever used it, of %d cores:", runtime.NumCPU()),
			"  a case whose machine figure is well above its own ran beside other work on a shared machine, and its records/s is low by as much.")
		if l := r.otherRequestsLine(); l != "" {
			t.lines = append(t.lines, l)
		}
		ts = append(ts, t)
	}
	if rows := r.ioRows(); len(rows) > 0 {
		t := table{heading: r.ioHeading(o) + ":", header: []string{"case", "concurrency", "records", "keys", "records/s", "of concurrency × 100/s", "CPU/record", "bench+broker cores busy", "machine cores busy", "per-key order", "status"}}
		for _, w := range rows {
			t.rows = append(t.rows, []string{w.label, w.concurrency, w.records, w.keys, w.rate, w.ofMax, w.cpu, w.cores, w.machine, w.order, w.status})
		}
		t.lines = append(t.lines, "cores busy: CPU time over the drain's time; bench+broker: the bench process (with the embedded broker in it) and a real broker's JVM;",
			"  machine: every core's busy time in /proc/stat, whoever used it (the machine may be shared). A run short of concurrency × 100/s is",
			"  CPU-bound when the machine's cores were at least 90% busy.")
		ts = append(ts, t)
	}
	return ts
}

func mdEscape(s string) string {
	return strings.NewReplacer("|", `\|`, "\n", " ").Replace(s)
}

// fmtRate formats a rate with thousands separators.
func fmtRate(v float64) string { return fmtCount(int(v + 0.5)) }

// fmtCount formats n with thousands separators.
func fmtCount(n int) string {
	s := fmt.Sprint(n)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 && s[i-1] != '-' {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// fmtDur formats a duration of a run.
func fmtDur(d time.Duration) string {
	switch {
	case d >= time.Minute:
		return d.Round(time.Second).String()
	case d >= time.Second:
		return fmt.Sprintf("%.2fs", d.Seconds())
	}
	return fmt.Sprintf("%dms", d.Milliseconds())
}

// fmtMs formats a latency in milliseconds.
func fmtMs(d time.Duration) string {
	return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
}
