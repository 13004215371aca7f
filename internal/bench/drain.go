package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"time"
)

// pollInterval is how often the output topic's log end is read while a
// backlog drains: the resolution of drain times.
const pollInterval = 5 * time.Millisecond

// drainResult is the outcome of a throughput case.
type drainResult struct {
	sys *system
	// n is the backlog; delivered and duplicates count the distinct
	// records of the backlog found in the output and the extra copies.
	n, delivered, duplicates int
	// keys is how many keys the backlog's records were keyed over.
	keys int
	// startup is from starting the system to the first output record;
	// elapsed to the last one (to the n-th distinct record).
	startup, elapsed time.Duration
	// cpu is the CPU time the bench process used from starting the system
	// to the last output record (all its threads: with the embedded broker
	// that includes the broker); 0 if not measured. use holds it and the
	// other figures sampled at the same two points: allocations, Kafka
	// requests, a broker process's CPU.
	cpu      time.Duration
	use      used
	timedOut bool
	err      error
	// check is what the system's check found (nil without one); settled
	// is from the last output record to when it passed.
	check   *checked
	settled time.Duration
	// rates are the records/s of every run of the case, sorted, when it
	// ran more than once (see median).
	rates []float64
	// order is what the per-key order check found (systems with
	// keyOrder), nil if it did not run.
	order *keyOrder
}

// median is the run of rs with the median rate (the lower of the two
// middle ones), carrying every run's rate; a run that did not complete
// stands for the case instead, so that no failure is hidden.
func median(rs []drainResult) drainResult {
	m, rates := medianRun(rs)
	m.rates = rates
	return m
}

// medianBy is the run of rs with the median score, the lower of the two
// middle ones (a better run scores higher, so the report shows the less
// flattering one), and, when there is more than one run, every run
// sorted by score; a run that did not complete stands for them instead,
// so that no failure is hidden.
func medianBy[R interface{ complete() bool }](rs []R, score func(R) float64) (R, []R) {
	for _, r := range rs {
		if !r.complete() {
			return r, nil
		}
	}
	sorted := slices.Clone(rs)
	slices.SortFunc(sorted, func(a, b R) int { return cmp.Compare(score(a), score(b)) })
	m := sorted[(len(sorted)-1)/2]
	if len(rs) < 2 {
		return m, nil
	}
	return m, sorted
}

// medianRun is the run of rs with the median rate (see medianBy) and,
// when there is more than one, every run's rate, sorted.
func medianRun[R interface {
	complete() bool
	rate() float64
}](rs []R) (R, []float64) {
	m, sorted := medianBy(rs, func(r R) float64 { return r.rate() })
	var rates []float64
	for _, r := range sorted {
		rates = append(rates, r.rate())
	}
	return m, rates
}

// complete says whether every record of the backlog reached the output.
func (r drainResult) complete() bool {
	return r.err == nil && !r.timedOut && r.delivered == r.n
}

// rate is the drain rate the issue asks for: n records over the time from
// starting the system to the last output record. It is 0 unless complete.
func (r drainResult) rate() float64 {
	if !r.complete() || r.elapsed <= 0 {
		return 0
	}
	return float64(r.n) / r.elapsed.Seconds()
}

// steadyRate leaves out the startup (joining the consumer group, creating
// topics): n records over the time from the first output record to the last.
func (r drainResult) steadyRate() float64 {
	if !r.complete() || r.elapsed <= r.startup {
		return 0
	}
	return float64(r.n) / (r.elapsed - r.startup).Seconds()
}

// status is "ok" or what went wrong.
func (r drainResult) status() string {
	return outcome(r.err, r.timedOut, r.elapsed, r.delivered, r.n, r.duplicates)
}

// outcome is "ok" or what went wrong with a case that wanted want records
// and got got of them.
func outcome(err error, timedOut bool, elapsed time.Duration, got, want, duplicates int) string {
	switch {
	case errors.Is(err, context.Canceled):
		return "interrupted"
	case err != nil:
		return "ERROR: " + err.Error()
	case timedOut:
		return fmt.Sprintf("timed out after %s with %d records", fmtDur(elapsed), got)
	case got < want:
		return fmt.Sprintf("INCOMPLETE: %d of %d records", got, want)
	case duplicates > 0:
		return fmt.Sprintf("ok (%d duplicates)", duplicates)
	}
	return "ok"
}

// runDrain measures how fast sys drains a backlog: it fills a fresh input
// topic with n records, starts sys, watches the output topic's log end
// until it holds them all, then reads the output and counts the distinct
// records before trusting the time. A system with a check runs it beside
// the drain and waits for it to pass before stopping the system.
func runDrain(ctx context.Context, e *env, sys *system, n int) drainResult {
	res := drainResult{sys: sys, n: n}
	prefix := e.prefix(sys.name)
	in, out := prefix+".in", prefix+".out"
	defer e.cleanup(prefix)
	e.logf("[%s] %s: draining %d records of %d bytes", sys.name, sys.label, res.n, e.opts.size)
	if err := e.createTopics(in, out); err != nil {
		res.err = err
		return res
	}
	res.keys = e.opts.keys
	if sys.concurrency > 0 {
		res.keys = ioKeys(res.n, e.opts.keys)
	}
	if err := e.produceBacklogWith(ctx, in, res.n, res.keys, nil); err != nil {
		res.err = err
		return res
	}

	cctx, cancel := context.WithTimeout(ctx, e.opts.timeout)
	defer cancel()
	stopProfile := e.startProfile(sys.name)
	began := time.Now()
	if e.backend.pid > 0 {
		e.jit = jitThreads(e.backend.pid)
	}
	u0 := e.sampleUsage(sys, prefix)
	var checks chan checked
	checkCtx, cancelCheck := context.WithCancel(cctx)
	defer cancelCheck()
	if sys.check != nil {
		checks = make(chan checked, 1)
		go func() { checks <- sys.check(checkCtx, e, prefix, res.n) }()
	}
	inst := sys.start(ctx, e, prefix, in, out)
	first, last, uLast, t, err := e.waitDelivered(cctx, inst, out, res.n, func() usage { return e.sampleUsage(sys, prefix) })
	if !last.IsZero() {
		res.use = uLast.since(u0)
		res.cpu = res.use.cpu
	}
	stopProfile()
	res.delivered, res.duplicates = t.distinct, t.duplicates
	if !first.IsZero() {
		res.startup = first.Sub(began)
	}
	res.elapsed = last.Sub(began)
	if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
		res.timedOut = true
		res.elapsed = time.Since(began)
		err = nil
	}
	if checks != nil {
		if err != nil || res.timedOut {
			cancelCheck()
		}
		c := <-checks
		res.check = &c
		switch {
		case c.err == nil:
			res.settled = c.at.Sub(last)
		case err == nil && !res.timedOut:
			err = c.err
		}
	}
	stopErr := inst.stop()
	if sys.keyOrder && e.opts.keys > 0 && err == nil && !res.timedOut {
		k, kerr := e.checkKeyOrder(ctx, out)
		switch {
		case kerr != nil:
			err = kerr
		case !k.ok():
			err = fmt.Errorf("per-key order: %s", k)
			fallthrough
		default:
			res.order = &k
		}
	}
	res.err = errors.Join(err, stopErr)
	if res.timedOut {
		// Count what arrived, for the report.
		if t, terr := e.countOutput(ctx, out, res.n); terr == nil {
			res.delivered, res.duplicates = t.distinct, t.duplicates
		}
	}
	e.logf("[%s] %s", sys.name, res.summary())
	return res
}

// cpuPerRecord is the process's CPU time per record of the drain, or 0.
func (r drainResult) cpuPerRecord() time.Duration {
	if r.cpu == 0 || r.n == 0 {
		return 0
	}
	return r.cpu / time.Duration(r.n)
}

// fmtCPU formats a CPU time per record in µs, "-" if not measured.
func fmtCPU(d time.Duration) string {
	if d == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f µs", float64(d)/float64(time.Microsecond))
}

// summary is a one-line description of the result for the progress log.
func (r drainResult) summary() string {
	if !r.complete() {
		return r.status()
	}
	s := fmt.Sprintf("%s: %d records in %s (startup %s): %s records/s, %s records/s after the first output, %s CPU per record",
		r.status(), r.n, fmtDur(r.elapsed), fmtDur(r.startup), fmtRate(r.rate()), fmtRate(r.steadyRate()), fmtCPU(r.cpuPerRecord()))
	if u := r.use; u.allocs {
		s += fmt.Sprintf(", %.1f allocations and %s allocated per record", r.perRecord(float64(u.objects)), fmtBytes(r.perRecord(float64(u.bytes))))
	}
	if u := r.use; u.counted {
		s += fmt.Sprintf(", %s Kafka requests per record", fmtPer(r.perRecord(float64(totalRequests(u.requests)))))
	}
	if u := r.use; u.brokerMeasured {
		s += fmt.Sprintf(", broker CPU %s per record%s", fmtCPU(r.brokerPerRecord()), r.jitNote())
	}
	if r.order != nil {
		s += "; per-key order: " + r.order.String()
	}
	if c := r.checkNote(); c != "" {
		s += "; " + c
	}
	return s
}

// perRecord is v over the drain's records.
func (r drainResult) perRecord(v float64) float64 {
	if r.n == 0 {
		return 0
	}
	return v / float64(r.n)
}

// brokerPerRecord is the broker process's CPU time per record of the
// drain, less what its JVM spent compiling (brokerJITPerRecord); 0 if not
// measured (or under its 10 ms resolution).
func (r drainResult) brokerPerRecord() time.Duration {
	if !r.use.brokerMeasured || r.n == 0 {
		return 0
	}
	return (r.use.broker - r.use.jit) / time.Duration(r.n)
}

// jitNote is " (+ JIT x µs)", what the broker's JVM spent compiling over
// the drain per record, or "" if that was not measured.
func (r drainResult) jitNote() string {
	if !r.use.jitMeasured {
		return ""
	}
	return " (+ JIT " + fmtCPU(r.brokerJITPerRecord()) + ")"
}

// brokerJITPerRecord is the CPU time the broker's JVM spent compiling (its
// JIT compiler threads) over the drain, per record; 0 if not measured.
func (r drainResult) brokerJITPerRecord() time.Duration {
	if !r.use.jitMeasured || r.n == 0 {
		return 0
	}
	return r.use.jit / time.Duration(r.n)
}

// coresBusy is the CPU time of the bench process and of a broker process
// over the drain's time: how many cores the case kept busy; 0 if not
// measured.
func (r drainResult) coresBusy() float64 {
	if r.cpu == 0 || r.elapsed <= 0 {
		return 0
	}
	return (r.cpu + r.use.broker).Seconds() / r.elapsed.Seconds()
}

// machineBusy is the busy time of every core of the machine over the
// drain's time (the bench, a broker, and whatever else ran), in cores; 0
// if not measured.
func (r drainResult) machineBusy() float64 {
	if r.use.machine == 0 || r.elapsed <= 0 {
		return 0
	}
	return r.use.machine.Seconds() / r.elapsed.Seconds()
}

// fmtBytes formats a byte count per record.
func fmtBytes(v float64) string {
	if v >= 10_000 {
		return fmt.Sprintf("%.1f KB", v/1000)
	}
	return fmt.Sprintf("%.0f B", v)
}

// fmtPer formats a small count per record to 3 significant digits.
func fmtPer(v float64) string {
	if v <= 0 {
		return "0"
	}
	digits := 2 - int(math.Floor(math.Log10(v)))
	return strconv.FormatFloat(v, 'f', max(digits, 0), 64)
}

// checkNote is what the system's check found and how long after the last
// output record it passed, or "".
func (r drainResult) checkNote() string {
	if r.check == nil || r.check.err != nil {
		return ""
	}
	return fmt.Sprintf("%s, every event in %s after the last output record", r.check.note, fmtDur(r.settled))
}

// waitDelivered polls the log end of out until it holds n records, then
// reads it and counts the distinct records of the backlog; while some are
// missing (the end held duplicates) it waits for more. It returns when the
// first output record was seen and when the n-th distinct one was (the
// poll that saw the log end reach it), what sample (if not nil) gave at
// that poll (it samples at each poll that finds the end grown), and the
// last count.
func (e *env) waitDelivered(ctx context.Context, inst *instance, out string, n int, sample func() usage) (first, last time.Time, at usage, t tally, err error) {
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	var end, checkedAt int64
	for {
		select {
		case <-ctx.Done():
			return first, last, at, t, ctx.Err()
		case <-inst.done:
			return first, last, at, t, fmt.Errorf("the system stopped on its own: %w", inst.err)
		case <-tick.C:
		}
		now := time.Now()
		got, err := e.logEnd(out)
		if err != nil {
			return first, last, at, t, err
		}
		if got > 0 && first.IsZero() {
			first = now
		}
		if got > end {
			end, last = got, now
			if sample != nil {
				at = sample()
			}
		}
		if end < int64(n) || end == checkedAt {
			continue
		}
		checkedAt = end
		t, err = e.countOutput(ctx, out, n)
		if err != nil {
			return first, last, at, t, err
		}
		if t.distinct == n {
			return first, last, at, t, nil
		}
	}
}

// startProfile starts a CPU profile of one drain if -cpuprofile-prefix was
// given; the returned func stops it.
func (e *env) startProfile(name string) (stop func()) {
	if e.opts.cpuProfile == "" {
		return func() {}
	}
	path := fmt.Sprintf("%s-%s-%s.prof", e.opts.cpuProfile, strings.Fields(e.backend.name)[0], name)
	writeAllocs(strings.TrimSuffix(path, ".prof") + ".allocs-before.prof")
	f, err := os.Create(path)
	if err == nil {
		err = pprof.StartCPUProfile(f)
	}
	if err != nil {
		e.logf("cpu profile %s: %v", path, err)
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
		writeAllocs(strings.TrimSuffix(path, ".prof") + ".allocs.prof")
		e.logf("cpu profile of the drain written to %s (allocations: go tool pprof -base %s %s)", path,
			strings.TrimSuffix(path, ".prof")+".allocs-before.prof", strings.TrimSuffix(path, ".prof")+".allocs.prof")
	}
}

// writeAllocs writes the allocation profile so far to path; the drain's own
// allocations are the difference of the profiles after and before it.
func writeAllocs(path string) {
	f, err := os.Create(path)
	if err != nil {
		return
	}
	defer f.Close()
	pprof.Lookup("allocs").WriteTo(f, 0)
}
