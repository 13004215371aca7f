// Package gctune sets the Go garbage collector for a process that runs
// stages (millrace run).
//
// A stage allocates a few kilobytes per record (sarama's request buffers,
// Watermill's message and context, the output record) and keeps little of
// it: its live heap is tens of megabytes while it allocates hundreds of
// megabytes a second. With Go's default GOGC=100 the collector then runs
// some 20 times a second, and its mark work and assists were a quarter of
// a no-op stage's CPU (issue 19's profiles). Percent halves how often it
// runs for a heap that may grow to three times the live one instead of
// twice; where the process runs under a memory limit (a container's
// cgroup), a soft memory limit below it makes the collector work harder
// as the heap nears the limit instead of the process being killed.
//
// Measured (make bench, issue 19, 2-core machine): on Kafka, interleaved
// runs of 200,000 records, the no-op stage's CPU per record went from
// 19.0 and 24.5 µs to 16.7 and 18.3, the jq stage's from 30.4 and 36.1 to
// 25.3 and 28.5. Draining 1,000,000 records through `millrace run` and one
// jq stage went from 60k to 65k records/s (uncompressed) and from 65k to
// 71k (snappy input), its peak RSS from 61 to 82 MB and from 125 to 161
// MB. GOGC=400 was faster still (73k and 77k) but peaked at 252 MB with
// snappy input, close to the 300 MB the issue allows.
package gctune

import (
	"errors"
	"fmt"
	"math"
	"os"
	"runtime/debug"

	"github.com/KimMachineGun/automemlimit/memlimit"
)

// Percent is the GOGC millrace run uses unless the GOGC environment
// variable is set: the heap may grow by this many percent of the live
// heap before a collection.
const Percent = 200

// LimitRatio is the fraction of the cgroup's memory limit (memory.max in
// cgroup v2, memory.limit_in_bytes in v1) set as the soft memory limit
// (GOMEMLIMIT) unless the GOMEMLIMIT environment variable is set: the
// rest is left for memory the Go runtime does not count (thread stacks of
// cgo, the kernel's page cache charged to the cgroup).
const LimitRatio = 0.9

// Settings are what Apply set, for the log.
type Settings struct {
	// Percent is the GOGC in effect; FromEnv says the GOGC environment
	// variable set it (Apply left it alone).
	Percent int
	FromEnv bool
	// Limit is the soft memory limit in bytes (math.MaxInt64: none);
	// LimitFrom says where it came from: "GOMEMLIMIT" (the environment
	// variable, left alone), "cgroup" (LimitRatio of its limit) or "" (no
	// limit).
	Limit     int64
	LimitFrom string
}

// String describes s for a log line, e.g. "GOGC=200, GOMEMLIMIT=460MiB
// (90% of the cgroup's memory limit)".
func (s Settings) String() string {
	g := fmt.Sprintf("GOGC=%d", s.Percent)
	if s.FromEnv {
		g += " (from the environment)"
	}
	switch s.LimitFrom {
	case "GOMEMLIMIT":
		return g + fmt.Sprintf(", GOMEMLIMIT=%dMiB (from the environment)", s.Limit>>20)
	case "cgroup":
		return g + fmt.Sprintf(", GOMEMLIMIT=%dMiB (%.0f%% of the cgroup's memory limit)", s.Limit>>20, LimitRatio*100)
	}
	return g + ", no memory limit"
}

// Apply sets GOGC to Percent unless the GOGC environment variable is set,
// and the soft memory limit to LimitRatio of the cgroup's memory limit
// unless GOMEMLIMIT is set (or AUTOMEMLIMIT=off; github.com/KimMachineGun/
// automemlimit reads the cgroup). It returns what is in effect, and an
// error only when the cgroup could not be read (the limit is then left
// alone; GOGC is set all the same).
func Apply() (Settings, error) {
	return apply(memlimit.FromCgroup)
}

// apply is Apply with the memory limit from provider.
func apply(provider memlimit.Provider) (Settings, error) {
	var s Settings
	if _, ok := os.LookupEnv("GOGC"); ok {
		// The runtime read it at start; SetGCPercent is the only way to
		// read it back (-1: off).
		s.Percent, s.FromEnv = debug.SetGCPercent(-1), true
		debug.SetGCPercent(s.Percent)
	} else {
		debug.SetGCPercent(Percent)
		s.Percent = Percent
	}
	limit, err := memlimit.Set(memlimit.WithProvider(provider), memlimit.WithRatio(LimitRatio))
	if errors.Is(err, memlimit.ErrCgroupsNotSupported) {
		err = nil // not Linux: no cgroup, no limit
	}
	s.Limit = limit
	switch _, env := os.LookupEnv("GOMEMLIMIT"); {
	case env:
		s.LimitFrom = "GOMEMLIMIT"
	case limit > 0 && limit < math.MaxInt64:
		s.LimitFrom = "cgroup"
	}
	if err != nil {
		return s, fmt.Errorf("read the cgroup's memory limit: %w", err)
	}
	return s, nil
}
