package realkafka

import (
	"bytes"
	"io"
	"strings"
	"sync"
)

// keepLines is how many of the broker's last output lines are kept for
// error messages.
const keepLines = 200

// lineLog forwards output to a writer, keeps the last lines in memory and
// closes a channel when a line contains a marker string.
type lineLog struct {
	mu      sync.Mutex
	out     io.Writer
	partial []byte
	lines   []string
	marker  string
	seen    chan struct{}
	matched bool
}

// newLineLog returns a lineLog that forwards to out and watches for marker.
func newLineLog(out io.Writer, marker string) *lineLog {
	return &lineLog{out: out, marker: marker, seen: make(chan struct{})}
}

// Write implements io.Writer.
func (l *lineLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.out.Write(p) // a failing log writer must not stop the broker
	l.partial = append(l.partial, p...)
	for {
		i := bytes.IndexByte(l.partial, '\n')
		if i < 0 {
			break
		}
		l.addLine(string(l.partial[:i]))
		l.partial = l.partial[i+1:]
	}
	return len(p), nil
}

// addLine records one complete line; l.mu is held.
func (l *lineLog) addLine(line string) {
	l.lines = append(l.lines, line)
	if len(l.lines) > keepLines {
		l.lines = append(l.lines[:0], l.lines[len(l.lines)-keepLines:]...)
	}
	if !l.matched && l.marker != "" && strings.Contains(line, l.marker) {
		l.matched = true
		close(l.seen)
	}
}

// watch starts watching for the marker again (for a restarted broker) and
// returns the channel closed when a later line contains it.
func (l *lineLog) watch() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.matched {
		l.seen, l.matched = make(chan struct{}), false
	}
	return l.seen
}

// progress writes a progress line through the same buffer.
func (l *lineLog) progress(s string) {
	l.Write([]byte("realkafka: " + s + "\n"))
}

// Tail returns the kept lines, including an unfinished last line.
func (l *lineLog) Tail() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := strings.Join(l.lines, "\n")
	if len(l.partial) > 0 {
		s += "\n" + string(l.partial)
	}
	return s
}
