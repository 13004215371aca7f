package prometheus

import (
	"io"
	"time"
)

// Options configures [StartWith]. The zero value scrapes nothing.
type Options struct {
	// Targets are host:port addresses scraped at /metrics (job "millrace").
	Targets []string
	// BearerToken, if set, is sent with every scrape of Targets.
	BearerToken string
	// RuleFiles are loaded as the server's rule files (alerting and
	// recording rules), evaluated every ScrapeInterval.
	RuleFiles []string
	// ScrapeSelf adds the server's own /metrics as a target (job
	// "prometheus").
	ScrapeSelf bool
	// ScrapeInterval is the scrape and rule evaluation interval. Zero
	// means 1s.
	ScrapeInterval time.Duration
	// StartTimeout bounds the wait for the server to be ready. Zero means
	// 30s.
	StartTimeout time.Duration
	// Log receives the server's output. Nil keeps only its last lines,
	// which the test log shows when the test fails (PROMETHEUS_LOG=1 shows
	// all of it on stderr).
	Log io.Writer
}

// withDefaults returns a copy of o with empty fields filled in.
func (o Options) withDefaults() Options {
	if o.ScrapeInterval <= 0 {
		o.ScrapeInterval = time.Second
	}
	if o.StartTimeout <= 0 {
		o.StartTimeout = 30 * time.Second
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	return o
}
