package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/IBM/sarama"
)

// progress draws a one-line progress bar on a terminal (and nothing
// elsewhere): records read of total, and how many were sent.
type progress struct {
	w     io.Writer
	total int64
	read  int64
	sent  int
	last  time.Time
	shown bool
}

// newProgress returns a progress bar writing to w if w is a terminal, or
// nil (whose methods do nothing).
func newProgress(w io.Writer, total int64) *progress {
	f, ok := w.(*os.File)
	if !ok || total <= 0 {
		return nil
	}
	if st, err := f.Stat(); err != nil || st.Mode()&os.ModeCharDevice == 0 {
		return nil
	}
	return &progress{w: w, total: total}
}

func (p *progress) step(sent bool) {
	if p == nil {
		return
	}
	p.read++
	if sent {
		p.sent++
	}
	if now := time.Now(); now.Sub(p.last) >= 100*time.Millisecond || p.read == p.total {
		p.last = now
		p.draw()
	}
}

func (p *progress) draw() {
	const width = 30
	done := int(int64(width) * min(p.read, p.total) / p.total)
	bar := make([]byte, width)
	for i := range bar {
		bar[i] = ' '
		if i < done {
			bar[i] = '='
		}
	}
	fmt.Fprintf(p.w, "\r[%s] %d/%d read, %d sent", bar, p.read, p.total, p.sent)
	p.shown = true
}

// done ends the bar's line.
func (p *progress) done() {
	if p != nil && p.shown {
		p.draw()
		fmt.Fprintln(p.w)
	}
}

// recordsBetween counts the offsets of topic from start (per partition;
// the log start where absent) to the end.
func recordsBetween(ctx context.Context, client sarama.Client, topic string, start map[int32]int64) int64 {
	parts, err := client.Partitions(topic)
	if err != nil {
		return 0
	}
	var n int64
	for _, p := range parts {
		end, err1 := client.GetOffset(topic, p, sarama.OffsetNewest)
		first, err2 := client.GetOffset(topic, p, sarama.OffsetOldest)
		if err1 != nil || err2 != nil || ctx.Err() != nil {
			return 0
		}
		if o, ok := start[p]; ok && o > first {
			first = o
		}
		n += max(end-first, 0)
	}
	return n
}
