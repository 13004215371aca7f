package main

import (
	"bufio"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"time"
)

// jvmGCLogFlag is the JVM flag that has the broker log each collector
// pause to path (unified logging, JEP 158: "-Xlog:gc:file=…:time"), one
// line per pause, stamped with the wall clock when it ended, e.g.
//
//	[2026-11-30T17:45:38.111+0000] GC(25) Pause Young (Normal) (G1 Evacuation Pause) 390M->53M(1024M) 22.441ms
func jvmGCLogFlag(path string) string { return "-Xlog:gc:file=" + path + ":time" }

// gcPauseLine matches a pause line of jvmGCLogFlag's log: its end time
// (ISO 8601 with milliseconds and a ±hhmm offset) and duration in ms.
var gcPauseLine = regexp.MustCompile(`^\[(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d{4})\].* Pause .* ([0-9.]+)ms$`)

// gcPause is one stop-the-world pause of the broker's JVM.
type gcPause struct {
	end time.Time
	d   time.Duration
}

// brokerPauses returns the pauses in the GC log at path that overlap
// [from, to]; no log (not a JVM broker the bench started) is no pauses.
func brokerPauses(path string, from, to time.Time) ([]gcPause, error) {
	if path == "" {
		return nil, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("broker GC log: %w", err)
	}
	defer f.Close()
	var out []gcPause
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		m := gcPauseLine.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		end, err1 := time.Parse("2006-01-02T15:04:05.000-0700", m[1])
		ms, err2 := strconv.ParseFloat(m[2], 64)
		if err1 != nil || err2 != nil {
			continue
		}
		p := gcPause{end: end, d: time.Duration(ms * float64(time.Millisecond))}
		if !p.end.Before(from) && !p.end.Add(-p.d).After(to) {
			out = append(out, p)
		}
	}
	return out, sc.Err()
}
