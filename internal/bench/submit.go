package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
	"github.com/millrace/millrace/internal/api"
	"github.com/millrace/millrace/transport"
)

// submitter submits the job with id and returns once it was accepted: a
// 202 from the HTTP API, or the broker's ack of the record. It is safe
// for concurrent use.
type submitter interface {
	submit(ctx context.Context, id int64) error
}

// httpSubmitter POSTs each job's payload to a pipeline's jobs endpoint
// of `millrace serve`, over keep-alive connections of one client.
type httpSubmitter struct {
	client *http.Client
	url    string
	size   int
	keys   int
	// dials counts the connections the client opened.
	dials atomic.Int64
}

// newHTTPSubmitter returns a submitter to url whose client keeps up to
// idle connections open between requests (at least as many as it has
// concurrent callers, so that each reuses one).
func newHTTPSubmitter(url string, idle int, o options) *httpSubmitter {
	s := &httpSubmitter{url: url, size: o.size, keys: o.keys}
	d := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	s.client = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		Proxy: nil,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			s.dials.Add(1)
			return d.DialContext(ctx, network, addr)
		},
		MaxIdleConnsPerHost: idle,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}}
	return s
}

// submit sends the record with id as a job, keyed like the bench's
// records (Millrace-Key), and checks the answer: 202 with a job id and a
// status URL.
func (s *httpSubmitter) submit(ctx context.Context, id int64) error {
	body := encodePayload(id, time.Now().UnixNano(), s.size)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if s.keys > 0 {
		req.Header.Set("Millrace-Key", "k"+strconv.FormatInt(id%int64(s.keys), 10))
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return err
	}
	answer, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return fmt.Errorf("read the answer: %w", err)
	}
	if resp.StatusCode != http.StatusAccepted {
		return fmt.Errorf("HTTP %d: %s", resp.StatusCode, bytes.TrimSpace(answer))
	}
	var a api.Accepted
	if err := json.Unmarshal(answer, &a); err != nil || a.JobID == "" || a.StatusURL == "" {
		return fmt.Errorf("HTTP 202 without a job id and status URL: %s", bytes.TrimSpace(answer))
	}
	return nil
}

// close closes the client's idle connections.
func (s *httpSubmitter) close() { s.client.CloseIdleConnections() }

// directSubmitter produces each job's record to a topic with millrace's
// producer (transport.Publisher on a sarama AsyncProducer with
// transport.NewProducerConfig, as the API's own) and waits for its ack.
type directSubmitter struct {
	e     *env
	pub   *transport.Publisher
	topic string
}

func newDirectSubmitter(e *env, topic string) (*directSubmitter, error) {
	pub, err := transport.NewPublisher(e.brokers, transport.NewProducerConfig("millrace-bench-direct"))
	if err != nil {
		return nil, err
	}
	return &directSubmitter{e: e, pub: pub, topic: topic}, nil
}

// submit produces the record with id (as the other cases' backlogs have
// it) and waits for the broker's ack; the producer's own timeouts bound
// the wait.
func (s *directSubmitter) submit(_ context.Context, id int64) error {
	return s.pub.Send(s.topic, []*sarama.ProducerMessage{s.e.record(s.topic, id)})
}

func (s *directSubmitter) close() error { return s.pub.Close() }

// load is what a load generator measured.
type load struct {
	// lat are the latencies of the accepted submissions, unsorted.
	lat []time.Duration
	// failed submissions; err is the first one's error.
	failed int
	err    error
	// elapsed is from the first submission to the last answer.
	elapsed time.Duration
	// offered is the rate of the open loop's sends, and lag how late its
	// dispatcher was behind its schedule at worst (both 0 when closed).
	offered float64
	lag     time.Duration
}

// failure records a failed submission.
func (l *load) failure(mu *sync.Mutex, err error) {
	mu.Lock()
	defer mu.Unlock()
	l.failed++
	if l.err == nil {
		l.err = err
	}
}

// closedLoop submits n jobs (ids first…first+n-1) from clients concurrent
// callers, each sending its next job once its last one was accepted; the
// latency of each is from just before its send to its acceptance. The
// first failure stops the callers.
func closedLoop(ctx context.Context, sub submitter, first int64, n, clients int) load {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	l := load{lat: make([]time.Duration, n)}
	done := make([]bool, n)
	var mu sync.Mutex
	var next atomic.Int64
	var wg sync.WaitGroup
	began := time.Now()
	for range clients {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(n) || ctx.Err() != nil {
					return
				}
				t0 := time.Now()
				if err := sub.submit(ctx, first+i); err != nil {
					l.failure(&mu, err)
					cancel()
					return
				}
				l.lat[i], done[i] = time.Since(t0), true
			}
		})
	}
	wg.Wait()
	return l.end(ctx, began, done)
}

// openLoop submits n jobs (ids first…first+n-1) at rate jobs/s whatever
// the answers take: the i-th is sent at start + i/rate, each on a
// goroutine of its own, and its latency is from that scheduled time to
// its acceptance, so a slow answer delays no later send and is not hidden
// (no coordinated omission). A dispatcher that falls behind sends at once
// what is due; its lag counts in the latencies.
func openLoop(ctx context.Context, sub submitter, first int64, n, rate int) load {
	l := load{lat: make([]time.Duration, n)}
	done := make([]bool, n)
	var mu sync.Mutex
	var wg sync.WaitGroup
	interval := time.Second / time.Duration(rate)
	began := time.Now()
	sent := 0
	for ; sent < n && ctx.Err() == nil; sent++ {
		at := began.Add(time.Duration(sent) * interval)
		if wait := time.Until(at); wait > 0 {
			time.Sleep(wait)
		} else {
			l.lag = max(l.lag, -wait)
		}
		i := sent
		wg.Go(func() {
			if err := sub.submit(ctx, first+int64(i)); err != nil {
				l.failure(&mu, err)
				return
			}
			l.lat[i], done[i] = time.Since(at), true
		})
	}
	l.offered = float64(sent) / time.Since(began).Seconds()
	wg.Wait()
	return l.end(ctx, began, done)
}

// end completes a load whose callers all returned: the time since began,
// the latencies of the accepted submissions, ctx's error if it ended first.
func (l load) end(ctx context.Context, began time.Time, done []bool) load {
	l.elapsed = time.Since(began)
	l.lat = accepted(l.lat, done)
	if l.err == nil && ctx.Err() != nil {
		l.err = ctx.Err()
	}
	return l
}

// accepted keeps the latencies whose submission was accepted.
func accepted(lat []time.Duration, done []bool) []time.Duration {
	out := lat[:0]
	for i, ok := range done {
		if ok {
			out = append(out, lat[i])
		}
	}
	return out
}
