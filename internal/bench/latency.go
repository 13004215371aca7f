package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Latency case ids: measured records are 0…want-1, warm-up records start
// at warmBase.
const (
	warmBase = int64(1) << 40
	// warmFor is how long records keep flowing after the first warm-up
	// record came out, before the measured ones start.
	warmFor = time.Second
)

// latencyResult is the outcome of a latency case.
type latencyResult struct {
	sys *system
	// want records were offered at offered records/s; got distinct ones
	// came out, plus duplicates.
	want, got, duplicates int
	offered               float64
	p50, p99, max         time.Duration
	elapsed               time.Duration
	timedOut              bool
	err                   error
	// pauses are the broker's GC pauses while the measured records were
	// offered and came out (a JVM broker the bench started; else none);
	// paused of the records were in flight during one, and the others'
	// p99 is clearP99.
	pauses   []gcPause
	paused   int
	clearP99 time.Duration
	// p99s are the p99 of every run of the case, sorted, when it ran
	// more than once (see medianLatency).
	p99s []time.Duration
	// use is what the bench process (the system, the load's producer and
	// the reader; with the embedded broker, the broker too), a broker
	// process and the machine used from the first measured record offered
	// to the last one read, window long; requests are the system's own.
	use    used
	window time.Duration
}

func (r latencyResult) complete() bool {
	return r.err == nil && !r.timedOut && r.got == r.want
}

// medianLatency is the run of rs with the median p99 (the higher of the
// two middle ones: medianBy), carrying every run's p99, sorted; a run that
// did not complete stands for them instead.
func medianLatency(rs []latencyResult) latencyResult {
	m, sorted := medianBy(rs, func(r latencyResult) float64 { return -r.p99.Seconds() })
	for _, r := range slices.Backward(sorted) {
		m.p99s = append(m.p99s, r.p99)
	}
	return m
}

// runsNote lists every run's p99 when there was more than one: "median of
// 3 runs, their p99 9.8, 12.0, 17.2 ms", or "".
func (r latencyResult) runsNote() string {
	if len(r.p99s) < 2 {
		return ""
	}
	parts := make([]string, len(r.p99s))
	for i, d := range r.p99s {
		parts[i] = fmt.Sprintf("%.1f", float64(d)/float64(time.Millisecond))
	}
	return fmt.Sprintf("median of %d runs, their p99 %s ms", len(r.p99s), strings.Join(parts, ", "))
}

// busyNote says how many cores were busy over the measured window and
// how many Kafka requests the system sent per record: "cores busy: bench
// 0.74, broker 1.02 (+ JIT 0.05), machine 1.86 of 2; 5.1 Kafka requests
// per record (Produce 2.0, Fetch 3.0)", or "" if not measured.
func (r latencyResult) busyNote() string {
	if r.window <= 0 || r.use.cpu == 0 {
		return ""
	}
	cores := func(d time.Duration) float64 { return d.Seconds() / r.window.Seconds() }
	n := fmt.Sprintf("cores busy: bench %.2f", cores(r.use.cpu))
	if r.use.brokerMeasured {
		n += fmt.Sprintf(", broker %.2f", cores(r.use.broker-r.use.jit))
		if r.use.jitMeasured {
			n += fmt.Sprintf(" (+ JIT %.2f)", cores(r.use.jit))
		}
	}
	if r.use.machine > 0 {
		n += fmt.Sprintf(", machine %.2f of %d", cores(r.use.machine), runtime.NumCPU())
	}
	if r.use.counted && r.want > 0 {
		var all int64
		for _, c := range r.use.requests {
			all += c
		}
		per := func(k kmsg.Key) float64 { return float64(r.use.requests[int16(k)]) / float64(r.want) }
		n += fmt.Sprintf("; %.1f Kafka requests per record (Produce %.1f, Fetch %.1f)",
			float64(all)/float64(r.want), per(kmsg.Produce), per(kmsg.Fetch))
	}
	return n
}

// status is "ok" or what went wrong.
func (r latencyResult) status() string {
	return outcome(r.err, r.timedOut, r.elapsed, r.got, r.want, r.duplicates)
}

// runLatency measures sys's end-to-end latency at a fixed offered load: it
// starts sys on fresh topics, offers warm-up records at -rate until they
// come out (so joining the group is not measured), then offers -rate ×
// -duration records, each stamped with the producer's clock in its payload
// just before it is handed to a sarama AsyncProducer, and times each at the
// moment a reader of the output topic receives it.
func runLatency(ctx context.Context, e *env, sys *system) latencyResult {
	want := int(math.Round(float64(e.opts.rate) * e.opts.duration.Seconds()))
	res := latencyResult{sys: sys, want: want}
	prefix := e.prefix(sys.name + "-lat")
	in, out := prefix+".in", prefix+".out"
	defer e.cleanup(prefix)
	e.logf("[%s latency] %s: %d records at %d records/s", sys.name, sys.label, want, e.opts.rate)
	if err := e.createTopics(in, out); err != nil {
		res.err = err
		return res
	}
	cctx, cancel := context.WithTimeout(ctx, e.opts.timeout)
	defer cancel()
	began := time.Now()
	rd, err := e.startLatencyReader(out, want)
	if err != nil {
		res.err = err
		return res
	}
	inst := sys.start(ctx, e, prefix, in, out)
	var u0 usage
	offered, from, err := e.offerLoad(cctx, in, rd, inst, want, func() { u0 = e.sampleUsage(sys, prefix) })
	if err == nil {
		select {
		case <-rd.allIn:
			res.use, res.window = e.sampleUsage(sys, prefix).since(u0), time.Since(from)
			res.pauses, err = brokerPauses(e.backend.gcLog, from, time.Now())
		case <-cctx.Done():
			err = cctx.Err()
		case <-inst.done:
			err = fmt.Errorf("the system stopped on its own: %w", inst.err)
		}
	}
	res.elapsed = time.Since(began)
	if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
		res.timedOut, err = true, nil
	}
	res.err = errors.Join(err, inst.stop())
	trips := rd.stop()
	res.offered = offered
	res.got, res.duplicates = len(trips), rd.dups
	if len(trips) > 0 {
		lats, clear := make([]time.Duration, len(trips)), make([]time.Duration, 0, len(trips))
		for i, t := range trips {
			lats[i] = t.arrived.Sub(t.sent)
			if t.metPause(res.pauses) {
				res.paused++
			} else {
				clear = append(clear, lats[i])
			}
		}
		slices.Sort(lats)
		res.p50, res.p99, res.max = percentile(lats, 50), percentile(lats, 99), lats[len(lats)-1]
		if len(clear) > 0 {
			slices.Sort(clear)
			res.clearP99 = percentile(clear, 99)
		}
	}
	if res.complete() {
		notes := slices.DeleteFunc([]string{res.pausesNote(), res.busyNote()}, func(s string) bool { return s == "" })
		e.logf("[%s latency] ok: p50 %s, p99 %s, max %s (offered %s records/s) %s",
			sys.name, fmtMs(res.p50), fmtMs(res.p99), fmtMs(res.max), fmtRate(res.offered), strings.Join(notes, "; "))
	} else {
		e.logf("[%s latency] %s", sys.name, res.status())
	}
	return res
}

// percentile is the nearest-rank p-th percentile of sorted values.
func percentile(sorted []time.Duration, p float64) time.Duration {
	i := int(math.Ceil(p/100*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

// offerLoad produces warm-up records at -rate until the reader has seen
// them for warmFor, then calls measuring and offers want measured records
// at the same pace, and waits for their acks. It returns the offered rate
// of the measured records and when the first was offered.
func (e *env) offerLoad(ctx context.Context, in string, rd *latencyReader, inst *instance, want int, measuring func()) (float64, time.Time, error) {
	p, err := sarama.NewAsyncProducer(e.brokers, e.config("millrace-bench-load"))
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("open producer: %w", err)
	}
	var wg sync.WaitGroup
	var produceErr error
	wg.Add(2)
	go func() {
		defer wg.Done()
		for range p.Successes() {
		}
	}()
	go func() {
		defer wg.Done()
		for pe := range p.Errors() {
			if produceErr == nil {
				produceErr = pe.Err
			}
		}
	}()
	interval := time.Second / time.Duration(e.opts.rate)
	next := time.Now()
	send := func(id int64) error {
		if d := time.Until(next); d > 0 {
			time.Sleep(d)
		}
		next = next.Add(interval)
		select {
		case p.Input() <- e.record(in, id):
			return nil
		case <-ctx.Done():
			return ctx.Err()
		case <-inst.done:
			return fmt.Errorf("the system stopped on its own: %w", inst.err)
		}
	}
	var offered float64
	var start time.Time
	err = func() error {
		for id := warmBase; !rd.warm(warmFor); id++ {
			if err := send(id); err != nil {
				return fmt.Errorf("warm-up: %w", err)
			}
		}
		measuring()
		start = time.Now()
		for id := range int64(want) {
			if err := send(id); err != nil {
				return err
			}
		}
		offered = float64(want) / time.Since(start).Seconds()
		return nil
	}()
	p.AsyncClose()
	wg.Wait()
	if err == nil && produceErr != nil {
		err = fmt.Errorf("produce: %w", produceErr)
	}
	return offered, start, err
}

// latencyReader reads an output topic outside any consumer group and
// records, for each measured record, the time from its producer stamp to
// its arrival.
type latencyReader struct {
	consumer sarama.Consumer
	pcs      []sarama.PartitionConsumer
	wg       sync.WaitGroup
	allIn    chan struct{} // closed when every measured record arrived

	mu        sync.Mutex
	trips     []trip
	seen      []bool
	dups      int
	firstWarm time.Time
}

// startLatencyReader starts reading every partition of topic from its
// start.
func (e *env) startLatencyReader(topic string, want int) (*latencyReader, error) {
	cfg := e.config("millrace-bench-reader")
	cfg.Consumer.Return.Errors = false
	c, err := sarama.NewConsumer(e.brokers, cfg)
	if err != nil {
		return nil, fmt.Errorf("latency reader: %w", err)
	}
	parts, err := c.Partitions(topic)
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("latency reader: partitions of %s: %w", topic, err)
	}
	rd := &latencyReader{consumer: c, allIn: make(chan struct{}), seen: make([]bool, want),
		trips: make([]trip, 0, want)}
	for _, part := range parts {
		pc, err := c.ConsumePartition(topic, part, sarama.OffsetOldest)
		if err != nil {
			rd.stop()
			return nil, fmt.Errorf("latency reader: %s/%d: %w", topic, part, err)
		}
		rd.pcs = append(rd.pcs, pc)
		rd.wg.Add(1)
		go func() {
			defer rd.wg.Done()
			for m := range pc.Messages() {
				rd.arrived(time.Now(), m.Value)
			}
		}()
	}
	return rd, nil
}

// arrived records one output record read at now.
func (rd *latencyReader) arrived(now time.Time, payload []byte) {
	id, ts, ok := parsePayload(payload)
	if !ok {
		return
	}
	rd.mu.Lock()
	defer rd.mu.Unlock()
	switch {
	case id >= warmBase:
		if rd.firstWarm.IsZero() {
			rd.firstWarm = now
		}
	case id < 0 || id >= int64(len(rd.seen)):
	case rd.seen[id]:
		rd.dups++
	default:
		rd.seen[id] = true
		rd.trips = append(rd.trips, trip{sent: time.Unix(0, ts), arrived: now})
		if len(rd.trips) == len(rd.seen) {
			close(rd.allIn)
		}
	}
}

// warm says whether warm-up records have been coming out for d.
func (rd *latencyReader) warm(d time.Duration) bool {
	rd.mu.Lock()
	defer rd.mu.Unlock()
	return !rd.firstWarm.IsZero() && time.Since(rd.firstWarm) >= d
}

// stop stops reading and returns the trips of the measured records
// that arrived.
func (rd *latencyReader) stop() []trip {
	for _, pc := range rd.pcs {
		pc.AsyncClose()
	}
	rd.wg.Wait()
	if err := rd.consumer.Close(); err != nil {
		fmt.Fprintf(os.Stderr, "bench: latency reader: close: %v\n", err)
	}
	rd.mu.Lock()
	defer rd.mu.Unlock()
	return rd.trips
}

// trip is when a measured record was stamped by the producer and when the
// reader received it.
type trip struct{ sent, arrived time.Time }

// metPause says whether one of the broker's pauses overlapped the trip.
func (t trip) metPause(ps []gcPause) bool {
	for _, p := range ps {
		if p.end.After(t.sent) && p.end.Add(-p.d).Before(t.arrived) {
			return true
		}
	}
	return false
}

// pausesNote sums up the broker's GC pauses for the report: "broker GC
// paused 3 times (longest 21.2 ms, 48.0 ms in all); 120 records were in
// flight during one, p99 of the others 9.1 ms", or "" for none.
func (r latencyResult) pausesNote() string {
	if len(r.pauses) == 0 {
		return ""
	}
	var longest, total time.Duration
	for _, p := range r.pauses {
		longest, total = max(longest, p.d), total+p.d
	}
	n := fmt.Sprintf("broker GC paused %d times (longest %s, %s in all)", len(r.pauses), fmtMs(longest), fmtMs(total))
	if r.got > 0 {
		n += fmt.Sprintf("; %s records were in flight during one", fmtCount(r.paused))
		if r.paused < r.got {
			n += ", p99 of the others " + fmtMs(r.clearP99)
		}
	}
	return n
}
