package main

import (
	"fmt"
	"runtime/metrics"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	gometrics "github.com/rcrowley/go-metrics"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/millrace/millrace/transport"
)

// usage is what the bench samples when a drain starts and again at each
// poll that finds the output grown (the last such sample is at the poll
// that saw the last output record, when the drain's time is taken too).
type usage struct {
	// cpu is the bench process's CPU time (every thread: with the
	// embedded broker, the broker's too).
	cpu   time.Duration
	cpuOK bool
	// objects and bytes are the heap allocations of the bench process so
	// far (runtime/metrics /gc/heap/allocs:objects and :bytes).
	objects, bytes uint64
	allocOK        bool
	// requests are the Kafka requests the measured system's clients sent
	// so far, by API key (see system.requests); nil if not counted.
	requests map[int16]int64
	// broker is the CPU time of a broker running as a process of its own
	// (real Kafka's JVM), to 10 ms.
	broker   time.Duration
	brokerOK bool
	// jit is the part of broker its JIT compiler threads used (see
	// jitThreads).
	jit   time.Duration
	jitOK bool
	// machine is the busy time of every core of the machine, whoever
	// used it.
	machine   time.Duration
	machineOK bool
}

// allocMetrics are the runtime/metrics samples of usage.
var allocMetrics = []string{"/gc/heap/allocs:objects", "/gc/heap/allocs:bytes"}

// sampleUsage samples what a drain of sys (whose names start with prefix)
// used so far.
func (e *env) sampleUsage(sys *system, prefix string) usage {
	var u usage
	u.cpu, u.cpuOK = processCPU()
	s := []metrics.Sample{{Name: allocMetrics[0]}, {Name: allocMetrics[1]}}
	metrics.Read(s)
	if s[0].Value.Kind() == metrics.KindUint64 && s[1].Value.Kind() == metrics.KindUint64 {
		u.objects, u.bytes, u.allocOK = s[0].Value.Uint64(), s[1].Value.Uint64(), true
	}
	if sys.requests != nil {
		u.requests = sys.requests(prefix)
	} else {
		u.requests = transport.KafkaRequests()
	}
	if e.backend.pid > 0 {
		u.broker, u.brokerOK = childCPU(e.backend.pid)
		u.jit, u.jitOK = threadsCPU(e.backend.pid, e.jit)
	}
	u.machine, u.machineOK = machineCPU()
	return u
}

// used is what a drain used: the difference of two samples. A figure that
// was not measured at both ends is zero, and its flag false.
type used struct {
	cpu            time.Duration
	objects, bytes uint64
	allocs         bool
	requests       map[int16]int64
	counted        bool
	broker         time.Duration
	brokerMeasured bool
	// jit is the part of broker the JVM spent compiling (its JIT
	// compiler threads): work a broker does while it warms up, not per
	// record served; jitMeasured is false if it was not told apart.
	jit         time.Duration
	jitMeasured bool
	machine     time.Duration // 0 if not measured
}

// since is what was used from u0 to u.
func (u usage) since(u0 usage) used {
	var d used
	if u.cpuOK && u0.cpuOK && u.cpu > u0.cpu {
		d.cpu = u.cpu - u0.cpu
	}
	if u.allocOK && u0.allocOK && u.objects >= u0.objects && u.bytes >= u0.bytes {
		d.objects, d.bytes, d.allocs = u.objects-u0.objects, u.bytes-u0.bytes, true
	}
	if u.requests != nil && u0.requests != nil {
		d.requests, d.counted = requestsSince(u0.requests, u.requests), true
	}
	if u.brokerOK && u0.brokerOK && u.broker >= u0.broker {
		d.broker, d.brokerMeasured = u.broker-u0.broker, true
		if u.jitOK && u0.jitOK && u.jit >= u0.jit {
			d.jit, d.jitMeasured = min(u.jit-u0.jit, d.broker), true
		}
	}
	if u.machineOK && u0.machineOK && u.machine > u0.machine {
		d.machine = u.machine - u0.machine
	}
	return d
}

// requestsSince is the requests of b not in a, by API key, leaving out
// keys with none.
func requestsSince(a, b map[int16]int64) map[int16]int64 {
	d := map[int16]int64{}
	for k, n := range b {
		if n -= a[k]; n > 0 {
			d[k] = n
		}
	}
	return d
}

// Kafka API keys the report shows on their own (the protocol guide's
// numbering); the rest are summed as "other".
const (
	apiProduce      int16 = 0
	apiFetch        int16 = 1
	apiOffsetCommit int16 = 8
)

// mainAPIs are the API keys the report gives a column each.
var mainAPIs = []int16{apiProduce, apiFetch, apiOffsetCommit}

// apiName names a Kafka API key as the protocol guide does ("Produce").
func apiName(k int16) string {
	if n := kmsg.NameForKey(k); n != "" && n != "Unknown" {
		return n
	}
	return "key " + strconv.Itoa(int(k))
}

// totalRequests sums requests over every API key.
func totalRequests(m map[int16]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}

// otherRequests describes the requests of keys outside mainAPIs, most
// first, as "Metadata 12, Heartbeat 4"; "" if none.
func otherRequests(m map[int16]int64) string {
	var keys []int16
	for k := range m {
		if !slices.Contains(mainAPIs, k) {
			keys = append(keys, k)
		}
	}
	slices.SortFunc(keys, func(a, b int16) int {
		if m[a] != m[b] {
			return int(m[b] - m[a])
		}
		return int(a - b)
	})
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", apiName(k), m[k])
	}
	return strings.Join(parts, ", ")
}

// requestTally counts Kafka requests by API key for clients whose metrics
// registry is not transport's (the stock watermill-kafka stage's).
type requestTally [128]atomic.Int64

// counts is the tally as transport.KafkaRequests gives its own.
func (t *requestTally) counts() map[int16]int64 {
	out := map[int16]int64{}
	for k := range t {
		if n := t[k].Load(); n > 0 {
			out[int16(k)] = n
		}
	}
	return out
}

// tallies are the request tallies of running cases, by prefix.
var tallies sync.Map

// tallyOf is the request tally of the case with prefix, made on first use.
func tallyOf(prefix string) *requestTally {
	t, _ := tallies.LoadOrStore(prefix, new(requestTally))
	return t.(*requestTally)
}

// tallyRequests is a system.requests for systems that count in tallyOf.
func tallyRequests(prefix string) map[int16]int64 { return tallyOf(prefix).counts() }

// countingRegistry is a go-metrics registry (sarama's default kind, which
// keeps every metric) that also counts the requests its clients send into
// a tally: sarama marks the meter "protocol-requests-rate-<key>" once per
// request, and the meter it gets here marks the tally too.
type countingRegistry struct {
	gometrics.Registry
	t *requestTally
}

// newCountingRegistry is a metrics.NewRegistry counting into t.
func newCountingRegistry(t *requestTally) countingRegistry {
	return countingRegistry{Registry: gometrics.NewRegistry(), t: t}
}

func (r countingRegistry) GetOrRegister(name string, metric any) any {
	m := r.Registry.GetOrRegister(name, metric)
	key, ok := strings.CutPrefix(name, "protocol-requests-rate-")
	if !ok {
		return m
	}
	k, err := strconv.Atoi(key) // per-broker copies ("…-for-broker-1") fail here
	if err != nil || k < 0 || k >= len(r.t) {
		return m
	}
	if meter, ok := m.(gometrics.Meter); ok {
		return teeMeter{Meter: meter, n: &r.t[k]}
	}
	return m
}

// teeMeter is a meter that also counts its marks into n.
type teeMeter struct {
	gometrics.Meter
	n *atomic.Int64
}

func (m teeMeter) Mark(n int64) {
	m.Meter.Mark(n)
	m.n.Add(n)
}
