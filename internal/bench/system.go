package main

import (
	"context"
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
}

// systems are the measured systems by case name.
var systems = map[string]*system{
	caseRaw:      {name: caseRaw, label: "(a) raw sarama consume→async produce", run: runRaw},
	caseStock:    {name: caseStock, label: "(b) stock watermill-kafka stage", run: runStock},
	caseNoop:     {name: caseNoop, label: "(c) millrace stage, no-op", run: millraceRunner(millraceSetup{metrics: true}, noopStage)},
	caseNoMetric: {name: caseNoMetric, label: "(c') millrace stage, no-op, metrics off", run: millraceRunner(millraceSetup{}, noopStage)},
	caseJQ:       {name: caseJQ, label: "(c) millrace stage, jq", run: millraceRunner(millraceSetup{metrics: true}, jqStage)},
	casePipeline: {name: casePipeline, label: "(d) millrace 3 stages, no-op", run: millraceRunner(millraceSetup{metrics: true}, threeNoops...)},
	casePipeRes: {name: casePipeRes, label: "(d') millrace 3 stages, no-op, job results on",
		run: millraceRunner(millraceSetup{metrics: true, results: true}, threeNoops...), check: jobResultsSettled(len(threeNoops))},
}

// threeNoops are the stages of the 3-stage cases.
var threeNoops = []stageYAML{noopStage, noopStage, noopStage}

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
