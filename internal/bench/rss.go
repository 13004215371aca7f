package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/IBM/sarama"
)

// rssResult is the outcome of the rss case.
type rssResult struct {
	// snappy says the backlog was produced snappy-compressed, in batches
	// as a Java producer fills them (snappyBatches).
	snappy                   bool
	n, delivered, duplicates int
	// peakMB is the child's VmHWM (peak resident set) once the output held
	// every record; rssMB its VmRSS then.
	peakMB, rssMB float64
	// inputBytes is the size of the backlog's logs on the broker; 0 if
	// not known.
	inputBytes       int64
	startup, elapsed time.Duration
	timedOut         bool
	err              error
}

func (r rssResult) complete() bool {
	return r.err == nil && !r.timedOut && r.delivered == r.n
}

// status is "ok" or what went wrong.
func (r rssResult) status() string {
	return outcome(r.err, r.timedOut, r.elapsed, r.delivered, r.n, r.duplicates)
}

// runRSS measures the peak memory of the real binary: it fills a fresh
// topic with -rss-records records (snappy-compressed if snappy), runs
// `bin/millrace run --brokers …` as a child process on a one-stage
// pipeline (jq with program `.`: the binary has only the built-in filters)
// and reads VmHWM from /proc/<pid>/status once the output topic holds
// every record.
func runRSS(ctx context.Context, e *env, snappy bool) (res rssResult) {
	res.n, res.snappy = e.opts.rssRecords, snappy
	name := "rss"
	var tune func(*sarama.Config)
	if snappy {
		name, tune = "rss-snappy", e.snappyBatches
	}
	prefix := e.prefix(name)
	in, out := prefix+".in", prefix+".out"
	defer e.cleanup(prefix)
	e.logf("[%s] %s run draining %d %s records through one jq stage", name, e.opts.bin, res.n, res.input())
	bin, err := filepath.Abs(e.opts.bin)
	if err == nil {
		_, err = os.Stat(bin)
	}
	if err != nil {
		res.err = fmt.Errorf("the millrace binary: %w (build it with `go build -o bin/millrace ./cmd/millrace`)", err)
		e.logf("[%s] %s", name, res.status())
		return res
	}
	if err := e.createTopics(in, out); err != nil {
		res.err = err
		return res
	}
	if err := e.produceBacklogWith(ctx, in, res.n, e.opts.keys, tune); err != nil {
		res.err = err
		return res
	}
	if b, err := e.topicBytes(in); err == nil {
		res.inputBytes = b
		e.logf("  the backlog takes %.1f MB on the broker (%.0f B per record)", float64(b)/1e6, float64(b)/float64(res.n))
	} else {
		e.logf("  size of the backlog on the broker: %v", err)
	}
	dir, err := os.MkdirTemp("", "millrace-bench-")
	if err != nil {
		res.err = fmt.Errorf("temp dir: %w", err)
		return res
	}
	defer os.RemoveAll(dir)
	file := filepath.Join(dir, "pipelines.yaml")
	src := pipelinesYAML(e.opts, prefix, in, out, false, stageYAML{filter: "jq", config: `{program: '.'}`})
	if err := os.WriteFile(file, []byte(src), 0o644); err != nil {
		res.err = fmt.Errorf("write %s: %w", file, err)
		return res
	}

	cctx, cancel := context.WithTimeout(ctx, e.opts.timeout)
	defer cancel()
	began := time.Now()
	child, err := startChild(bin, "run", "-f", file, "--brokers", strings.Join(e.brokers, ","),
		"--log-level", "warn", "--stop-timeout", "15s")
	if err != nil {
		res.err = err
		return res
	}
	first, last, _, t, err := e.waitDelivered(cctx, child.inst, out, res.n, nil)
	res.delivered, res.duplicates = t.distinct, t.duplicates
	res.elapsed = last.Sub(began)
	if !first.IsZero() {
		res.startup = first.Sub(began)
	}
	if err == nil {
		res.peakMB, res.rssMB, err = memoryMB(child.cmd.Process.Pid)
	}
	if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
		res.timedOut, res.elapsed, err = true, time.Since(began), nil
	}
	res.err = errors.Join(err, child.stop())
	if res.timedOut {
		if t, terr := e.countOutput(ctx, out, res.n); terr == nil {
			res.delivered, res.duplicates = t.distinct, t.duplicates
		}
	}
	if res.complete() {
		e.logf("[%s] ok: peak RSS %.1f MB (RSS at the end %.1f MB); drained %d records in %s, %s records/s",
			name, res.peakMB, res.rssMB, res.n, fmtDur(res.elapsed), fmtRate(float64(res.n)/res.elapsed.Seconds()))
	} else {
		e.logf("[%s] %s", name, res.status())
	}
	return res
}

// input says how the backlog was produced: "uncompressed" or "snappy input".
func (r rssResult) input() string {
	if r.snappy {
		return "snappy input"
	}
	return "uncompressed"
}

// child is the millrace process of the rss case.
type child struct {
	cmd    *exec.Cmd
	inst   *instance // done when the process exited; err says how
	output *tailBuffer
}

// startChild starts bin with args; its output is kept for error messages.
func startChild(bin string, args ...string) (*child, error) {
	cmd := exec.Command(bin, args...)
	out := &tailBuffer{max: 8 << 10}
	cmd.Stdout, cmd.Stderr = out, out
	setParentDeath(cmd)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	c := &child{cmd: cmd, output: out, inst: &instance{cancel: func() {}, done: make(chan struct{})}}
	go func() {
		defer close(c.inst.done)
		if err := cmd.Wait(); err != nil {
			c.inst.err = fmt.Errorf("%s exited: %w; its last output:\n%s", filepath.Base(bin), err, out.String())
		} else {
			c.inst.err = fmt.Errorf("%s exited early; its last output:\n%s", filepath.Base(bin), out.String())
		}
	}()
	return c, nil
}

// stop stops the process as a user would (SIGTERM), killing it if it does
// not exit in time, and reports an unclean exit.
func (c *child) stop() error {
	select {
	case <-c.inst.done:
		return c.inst.err
	default:
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.inst.done:
		if c.cmd.ProcessState.Success() {
			return nil
		}
		return c.inst.err
	case <-time.After(30 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.inst.done
		return fmt.Errorf("millrace did not stop within 30s of SIGTERM; killed it")
	}
}

// memoryMB reads VmHWM and VmRSS of process pid, in MB (10^6 bytes).
func memoryMB(pid int) (peak, rss float64, err error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, fmt.Errorf("read memory of pid %d: %w", pid, err)
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		name, value, ok := strings.Cut(s.Text(), ":")
		if !ok || name != "VmHWM" && name != "VmRSS" {
			continue
		}
		kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(value), " kB"), 64)
		if err != nil {
			return 0, 0, fmt.Errorf("parse %s of pid %d: %w", name, pid, err)
		}
		if name == "VmHWM" {
			peak = kb * 1024 / 1e6
		} else {
			rss = kb * 1024 / 1e6
		}
	}
	if err := s.Err(); err != nil {
		return 0, 0, fmt.Errorf("read memory of pid %d: %w", pid, err)
	}
	if peak == 0 {
		return 0, 0, fmt.Errorf("no VmHWM in /proc/%d/status", pid)
	}
	return peak, rss, nil
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > t.max {
		t.buf = append([]byte(nil), t.buf[len(t.buf)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}
