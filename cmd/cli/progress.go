package cli

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/millrace/millrace/kafkaops"
)

// progress draws a one-line progress bar on a terminal (and nothing
// elsewhere): records read of the total, and how many were sent.
type progress struct {
	w     io.Writer
	p     kafkaops.Progress
	last  time.Time
	shown bool
}

// newProgress returns a progress bar writing to w if w is a terminal, or
// nil (whose methods do nothing).
func newProgress(w io.Writer) *progress {
	f, ok := w.(*os.File)
	if !ok {
		return nil
	}
	if st, err := f.Stat(); err != nil || st.Mode()&os.ModeCharDevice == 0 {
		return nil
	}
	return &progress{w: w}
}

// report returns the function an operation reports its progress to; nil
// for a nil bar.
func (b *progress) report() func(kafkaops.Progress) {
	if b == nil {
		return nil
	}
	return b.update
}

// update draws p, at most every 100 ms (and at the end); a total of 0
// (unknown) draws nothing.
func (b *progress) update(p kafkaops.Progress) {
	if p.Total <= 0 {
		return
	}
	b.p = p
	if now := time.Now(); now.Sub(b.last) >= 100*time.Millisecond || p.Read == p.Total {
		b.last = now
		b.draw()
	}
}

func (b *progress) draw() {
	fmt.Fprint(b.w, progressLine(b.p))
	b.shown = true
}

// progressLine is the bar for p: "\r[====      ] 40/100 read, 38 sent".
func progressLine(p kafkaops.Progress) string {
	const width = 30
	done := int(int64(width) * min(p.Read, p.Total) / p.Total)
	bar := make([]byte, width)
	for i := range bar {
		bar[i] = ' '
		if i < done {
			bar[i] = '='
		}
	}
	return fmt.Sprintf("\r[%s] %d/%d read, %d sent", bar, p.Read, p.Total, p.Sent)
}

// done ends the bar's line.
func (b *progress) done() {
	if b != nil && b.shown {
		b.draw()
		fmt.Fprintln(b.w)
	}
}
