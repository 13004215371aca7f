package main

import (
	"context"
	"fmt"
	"time"
)

// system is what a case measures: something that moves every record of an
// input topic to an output topic.
type system struct {
	// name is the case name (see allCases).
	name string
	// label names the system in the report.
	label string
	// run moves records from in to out until ctx ends, then stops cleanly
	// and returns. prefix is unique to the case: topics the system creates
	// must be named "<prefix>.…" (so they are deleted after the case) and
	// consumer groups must contain it (so they are fresh).
	run func(ctx context.Context, e *env, prefix, in, out string) error
	// check, if set, is what a drain of n records must also have done
	// besides filling the output. It runs beside the drain, from the
	// system's start until it passes or ctx ends, and the system is not
	// stopped before it returns; its time is not in the drain's.
	check func(ctx context.Context, e *env, prefix string, n int) checked
	// requests, if set, are the Kafka requests the system's clients sent so
	// far, by API key, for a system whose clients transport.KafkaRequests
	// does not count; nil means transport.KafkaRequests.
	requests func(prefix string) map[int16]int64
	// keyOrder has the drain check, once the output is complete, that each
	// key's records came out in the order they went in (checkKeyOrder); a
	// violation fails the case.
	keyOrder bool
	// concurrency is the stage concurrency of an io case, else 0.
	concurrency int
}

// systems are the measured systems by case name.
var systems = map[string]*system{
	caseRaw:      {name: caseRaw, label: "(a) raw sarama consume→async produce", run: runRaw},
	caseStock:    {name: caseStock, label: "(b) stock watermill-kafka stage", run: runStock, requests: tallyRequests},
	caseNoop:     {name: caseNoop, label: "(c) millrace stage, no-op", run: millraceRunner(millraceSetup{metrics: true}, noopStage)},
	caseNoMetric: {name: caseNoMetric, label: "(c') millrace stage, no-op, metrics off", run: millraceRunner(millraceSetup{}, noopStage)},
	caseJQ:       {name: caseJQ, label: "(c) millrace stage, jq", run: millraceRunner(millraceSetup{metrics: true}, jqStage)},
	casePipeline: {name: casePipeline, label: "(d) millrace 3 stages, no-op", run: millraceRunner(millraceSetup{metrics: true}, threeNoops...)},
	casePipeJQ:   {name: casePipeJQ, label: "(d'') millrace 3 stages, jq", run: millraceRunner(millraceSetup{metrics: true}, threeJQs...)},
	casePipeRes: {name: casePipeRes, label: "(d') millrace 3 stages, no-op, job results on",
		run: millraceRunner(millraceSetup{metrics: true, results: true}, threeNoops...), check: jobResultsSettled(len(threeNoops))},
}

// threeNoops and threeJQs are the stages of the 3-stage cases.
var (
	threeNoops = []stageYAML{noopStage, noopStage, noopStage}
	threeJQs   = []stageYAML{jqStage, jqStage, jqStage}
)

// ioConcurrencies are the stage concurrencies the io case runs.
var ioConcurrencies = []int{1, 16, 256}

// ioName is the name of the io case's system of concurrency c.
func ioName(c int) string { return fmt.Sprintf("%s-%d", caseIO, c) }

func init() {
	for _, c := range ioConcurrencies {
		systems[ioName(c)] = &system{
			name: ioName(c), label: fmt.Sprintf("(e) millrace stage, 10 ms wait, concurrency %d", c),
			run:      millraceRunner(millraceSetup{metrics: true}, ioStage(c)),
			keyOrder: true, concurrency: c,
		}
	}
}

// ioRecords is the backlog of the io case of concurrency c: what c slots
// move in seconds at 10 ms a record (c × 100 × seconds), at least 600.
func ioRecords(c, seconds int) int {
	return max(600, c*int(time.Second/ioWait)*seconds)
}

// ioKeys is how many keys an io backlog of n records is keyed over: keys
// (-keys), but no more than n/10, so that every key has 10 records or more
// and the per-key order check has orders to check (with 10,000 keys the
// 600 records of concurrency 1 would have a key each). Keys are used
// round-robin, so a partition's records cycle through its share of the
// keys (about keys/partitions): at 1,000 records per concurrency slot
// (c × 100 × 6 records, n/10 keys, 8 partitions) that is more than the c
// records a window hands out, and no record waits behind one of its own
// key.
func ioKeys(n, keys int) int {
	if keys == 0 {
		return 0
	}
	return max(1, min(keys, n/10))
}

// instance is a running system.
type instance struct {
	cancel context.CancelFunc
	done   chan struct{}
	err    error
}

// start runs s in a goroutine until stop is called (or it fails).
func (s *system) start(parent context.Context, e *env, prefix, in, out string) *instance {
	ctx, cancel := context.WithCancel(parent)
	inst := &instance{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(inst.done)
		inst.err = s.run(ctx, e, prefix, in, out)
	}()
	return inst
}

// stop stops the system, waits until it has stopped and returns its error.
func (i *instance) stop() error {
	i.cancel()
	<-i.done
	return i.err
}
