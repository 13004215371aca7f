package main_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/millrace/millrace/testkit"
	"github.com/millrace/millrace/testkit/realkafka"
	"github.com/millrace/millrace/transport"
)

// Helpers of the fault tests (chaos_test.go): a broker the test owns and
// can bounce, a producer that outlives a broker restart, the drain wait,
// and the analysis of what came out at each stage.

// ownBroker is a broker a fault test starts for itself (never the shared
// one), so that it can take it down and start it again on the same port
// and data.
type ownBroker struct {
	backend testkit.Backend
	// signals are the ways the broker goes down that a test should try.
	signals []string
	// bounces is how many times a run should bounce it: whether a bounce
	// shows a fault depends on what is in flight at that moment (one
	// bounce showed the dedup fault in 2 of 4 runs on the embedded broker
	// and in 1 of 2 SIGTERM runs on Kafka).
	bounces int
	// down takes the broker down with sig ("SIGTERM" or "SIGKILL"); up
	// starts it again on the same port and data and waits until it is
	// ready.
	down func(t *testing.T, sig string)
	up   func(t *testing.T)
	// logs are the broker's own.
	logs *faultLogs
}

// bounce takes the broker down with sig, keeps it down for d and starts
// it again.
func (b *ownBroker) bounce(t *testing.T, sig string, d time.Duration) {
	t.Helper()
	b.down(t, sig)
	time.Sleep(d)
	b.up(t)
}

// forEachOwnBroker runs fn as a subtest on a broker of its own: the
// embedded broker (a `millrace broker` process with a data dir) and real
// Kafka (a restartable realkafka broker with a small heap). Each is
// stopped and its data removed when the subtest ends, failed or not.
func forEachOwnBroker(t *testing.T, fn func(t *testing.T, b *ownBroker)) {
	t.Run("embedded", func(t *testing.T) {
		logs := newFaultLogs(t)
		dir := t.TempDir()
		port := freePort(t)
		p, backend := startBroker(t, "broker", dir, port)
		logs.add(p)
		b := &ownBroker{backend: backend, signals: []string{"SIGTERM"}, bounces: 2, logs: logs}
		b.down = func(t *testing.T, sig string) {
			t.Helper()
			switch sig {
			case "SIGTERM":
				p.stop(30 * time.Second)
			case "SIGKILL":
				_ = p.cmd.Process.Kill()
				<-p.done
			}
		}
		b.up = func(t *testing.T) {
			t.Helper()
			p, _ = startBroker(t, "broker (restarted)", dir, port)
			logs.add(p)
		}
		fn(t, b)
	})
	if os.Getenv("MILLRACE_SKIP_KAFKA") == "1" && os.Getenv("CI") != "true" {
		t.Run("kafka", func(t *testing.T) { t.Skip("SKIPPING real-Kafka backend: MILLRACE_SKIP_KAFKA=1") })
		return
	}
	logDir := t.TempDir()
	logFile, err := os.Create(filepath.Join(logDir, "kafka.log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { logFile.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	k, err := realkafka.Start(ctx, realkafka.Options{HeapMB: 256, Log: logFile})
	if errors.Is(err, realkafka.ErrNoJava) || errors.Is(err, realkafka.ErrNoMaven) {
		if os.Getenv("CI") == "true" {
			t.Fatalf("real Kafka is required under CI=true: %v", err)
		}
		t.Run("kafka", func(t *testing.T) { t.Skipf("SKIPPING real-Kafka test: %v", err) })
		return
	}
	if err != nil {
		t.Fatalf("start real Kafka: %v", err)
	}
	t.Cleanup(func() {
		if err := k.Stop(); err != nil {
			t.Errorf("stop real Kafka: %v", err)
		}
	})
	t.Logf("own real Kafka %s on %s, started in %s", k.Version(), k.Addr(), k.StartupTime().Round(time.Millisecond))
	t.Run("kafka-"+k.Version(), func(t *testing.T) {
		logs := newFaultLogs(t)
		logs.addFile("kafka.log", logFile.Name())
		b := &ownBroker{
			backend: testkit.Backend{Name: "kafka-" + k.Version(), Brokers: []string{k.Addr()}},
			signals: []string{"SIGTERM", "SIGKILL"},
			bounces: 2,
			logs:    logs,
		}
		b.down = func(t *testing.T, sig string) {
			t.Helper()
			var err error
			switch sig {
			case "SIGTERM":
				err = k.Terminate(time.Minute)
			case "SIGKILL":
				err = k.Kill()
			}
			if err != nil {
				t.Fatalf("%s of the Kafka broker: %v", sig, err)
			}
		}
		b.up = func(t *testing.T) {
			t.Helper()
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			if err := k.Restart(ctx); err != nil {
				t.Fatalf("restart the Kafka broker: %v", err)
			}
		}
		fn(t, b)
	})
}

// faultLogs keeps the logs of a fault test's processes: when the test
// fails (or MILLRACE_KEEP_LOGS=1) they are written to a directory that
// stays (its path is logged); when it passes they are dropped.
type faultLogs struct {
	mu    sync.Mutex
	procs []*proc
	files map[string]string // name → path of a log written by someone else
}

func newFaultLogs(t *testing.T) *faultLogs {
	l := &faultLogs{files: map[string]string{}}
	// Registered first, so it runs last: after every process was killed.
	t.Cleanup(func() {
		if !t.Failed() && os.Getenv("MILLRACE_KEEP_LOGS") != "1" {
			return
		}
		dir, err := os.MkdirTemp("", "millrace-faults-")
		if err != nil {
			t.Logf("keep logs: %v", err)
			return
		}
		l.mu.Lock()
		defer l.mu.Unlock()
		for i, p := range l.procs {
			name := fmt.Sprintf("%02d %s.log", i, strings.NewReplacer("/", "_", " ", "_", "#", "").Replace(p.name))
			_ = os.WriteFile(filepath.Join(dir, name), []byte(p.logText()), 0o644)
		}
		for name, path := range l.files {
			if b, err := os.ReadFile(path); err == nil {
				_ = os.WriteFile(filepath.Join(dir, name), b, 0o644)
			}
		}
		t.Logf("logs of the processes kept in %s", dir)
	})
	return l
}

func (l *faultLogs) add(p *proc) {
	p.quiet = true
	l.mu.Lock()
	l.procs = append(l.procs, p)
	l.mu.Unlock()
}

func (l *faultLogs) addFile(name, path string) {
	l.mu.Lock()
	l.files[name] = path
	l.mu.Unlock()
}

// millrace logs in slog's text format: level=ERROR msg="..." k=v ...
var logLineRE = regexp.MustCompile(`level=(ERROR|WARN) msg=("(?:[^"\\]|\\.)*"|\S+)(.*)`)

var stageFieldRE = regexp.MustCompile(` stage=(\S+)`)

// summary counts the ERROR and WARN lines of every process by message
// (and stage), with the first such line of each.
func (l *faultLogs) summary() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var b strings.Builder
	for _, p := range l.procs {
		type group struct {
			n     int
			first string
		}
		groups := map[string]*group{}
		var order []string
		for _, line := range strings.Split(p.logText(), "\n") {
			m := logLineRE.FindStringSubmatch(line)
			if m == nil {
				continue
			}
			key := m[1] + " " + m[2]
			if s := stageFieldRE.FindStringSubmatch(m[3]); s != nil {
				key += " stage=" + s[1]
			}
			g := groups[key]
			if g == nil {
				g = &group{first: line}
				groups[key] = g
				order = append(order, key)
			}
			g.n++
		}
		if len(order) == 0 {
			continue
		}
		fmt.Fprintf(&b, "  %s:\n", p.name)
		for _, k := range order {
			fmt.Fprintf(&b, "    %5d x %s\n          first: %s\n", groups[k].n, k, clip(groups[k].first, 400))
		}
	}
	for name, path := range l.files {
		text, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		var lines []string
		for _, line := range strings.Split(string(text), "\n") {
			if strings.Contains(line, "] ERROR ") || strings.Contains(line, "] WARN ") {
				lines = append(lines, clip(line, 400))
			}
		}
		if len(lines) > 0 {
			fmt.Fprintf(&b, "  %s: %d ERROR/WARN lines, the last ones:\n    %s\n", name, len(lines),
				strings.Join(lines[max(0, len(lines)-15):], "\n    "))
		}
	}
	return b.String()
}

// grep returns the lines of every process log that contain one of subs,
// each prefixed with the process name, at most max of them.
func (l *faultLogs) grep(max int, subs ...string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, p := range l.procs {
		for _, line := range strings.Split(p.logText(), "\n") {
			for _, s := range subs {
				if strings.Contains(line, s) {
					out = append(out, p.name+": "+clip(line, 600))
					break
				}
			}
			if len(out) >= max {
				return out
			}
		}
	}
	return out
}

// recordFailed reports whether a process logged a failure to record id
// as a dedup key (the handler's error "record dedup key: ... key \"id\"").
func (l *faultLogs) recordFailed(id int) bool {
	return len(l.grep(1, fmt.Sprintf(`record dedup key: dedup: record key \"%d\"`, id))) > 0
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// feeder produces records {"id":i,"k":"k<i mod keys>","seq":i div keys},
// keyed by k, to a topic: batches of consecutive ids (so no two records of
// one key share a batch) at a steady pace, each batch acknowledged before
// the next is sent. Records the broker did not acknowledge (it is down)
// are sent again until it does, so every id reaches the topic at least
// once, and per key in order; a record sent again may be there twice.
type feeder struct {
	n, keys, batch int
	sent           atomic.Int64 // records acknowledged
	resent         atomic.Int64 // records sent again after a failure
	failures       atomic.Int64 // failed sends
	stop           chan struct{}
	done           chan struct{}
	err            error
	took           time.Duration
	lastErr        atomic.Value // string
}

func feedRecord(id, keys int) *sarama.ProducerMessage {
	k := fmt.Sprintf("k%d", id%keys)
	v := fmt.Sprintf(`{"id":%d,"k":%q,"seq":%d}`, id, k, id/keys)
	return &sarama.ProducerMessage{Key: sarama.StringEncoder(k), Value: sarama.StringEncoder(v)}
}

// startFeeder starts producing n records to topic, one batch every every.
func startFeeder(t *testing.T, b testkit.Backend, topic string, n, keys, batch int, every time.Duration) *feeder {
	t.Helper()
	if batch > keys {
		t.Fatalf("feeder: a batch of %d would hold two records of one of %d keys", batch, keys)
	}
	cfg := transport.NewSaramaConfig("millrace-faults-feed")
	cfg.Net.MaxOpenRequests = 1
	client, err := transport.ConnectTimeout(context.Background(), b.Brokers, cfg, 30*time.Second)
	if err != nil {
		t.Fatalf("feeder: %v", err)
	}
	producer, err := sarama.NewSyncProducerFromClient(client)
	if err != nil {
		client.Close()
		t.Fatalf("feeder: %v", err)
	}
	f := &feeder{n: n, keys: keys, batch: batch, stop: make(chan struct{}), done: make(chan struct{})}
	f.lastErr.Store("")
	go func() {
		defer close(f.done)
		defer client.Close()
		defer producer.Close()
		begin := time.Now()
		defer func() { f.took = time.Since(begin) }()
		for i := 0; i < n; i += batch {
			due := begin.Add(time.Duration(i/batch) * every)
			select {
			case <-f.stop:
				f.err = errors.New("stopped")
				return
			case <-time.After(time.Until(due)):
			}
			ids := make([]int, 0, batch)
			for id := i; id < min(i+batch, n); id++ {
				ids = append(ids, id)
			}
			for len(ids) > 0 {
				msgs := make([]*sarama.ProducerMessage, len(ids))
				for j, id := range ids {
					msgs[j] = feedRecord(id, keys)
					msgs[j].Topic = topic
					msgs[j].Metadata = id
				}
				err := producer.SendMessages(msgs)
				if err == nil {
					f.sent.Add(int64(len(ids)))
					break
				}
				f.failures.Add(1)
				f.lastErr.Store(err.Error())
				var failed []int
				var perrs sarama.ProducerErrors
				if errors.As(err, &perrs) {
					for _, pe := range perrs {
						failed = append(failed, pe.Msg.Metadata.(int))
					}
				} else {
					failed = ids
				}
				f.sent.Add(int64(len(ids) - len(failed)))
				f.resent.Add(int64(len(failed)))
				ids = failed
				select {
				case <-f.stop:
					f.err = fmt.Errorf("stopped while records were unacknowledged: %v", err)
					return
				case <-time.After(250 * time.Millisecond):
				}
			}
		}
	}()
	t.Cleanup(func() {
		select {
		case <-f.done:
		default:
			close(f.stop)
			<-f.done
		}
	})
	return f
}

// running reports whether the feeder still has records to send.
func (f *feeder) running() bool {
	select {
	case <-f.done:
		return false
	default:
		return true
	}
}

// wait waits until every record is acknowledged.
func (f *feeder) wait(t *testing.T, timeout time.Duration) {
	t.Helper()
	select {
	case <-f.done:
	case <-time.After(timeout):
		t.Fatalf("feeder: %d of %d records acknowledged after %s (%d failed sends, last: %s)",
			f.sent.Load(), f.n, timeout, f.failures.Load(), f.lastErr.Load())
	}
	if f.err != nil {
		t.Fatalf("feeder: %v", f.err)
	}
}

// stagesOf is the consumer group and input topic of each stage a, b, c of
// the 3-stage pipeline name (faultPipeline).
func stagesOf(name string) [][2]string {
	return [][2]string{
		{"millrace." + name + ".a", name + ".in"},
		{"millrace." + name + ".b", name + ".b"},
		{"millrace." + name + ".c", name + ".c"},
	}
}

// faultPipeline is a 3-stage jq pipeline whose middle stage, b,
// deduplicates by .id: a reads name.in, b name.b, c name.c (b's output)
// and c writes name.out.
func faultPipeline(name string) string {
	return fmt.Sprintf(`version: 1
pipelines:
  - name: %[1]s
    input: %[1]s.in
    output: %[1]s.out
    partitions: 4
    stages:
      - {name: a, filter: jq, config: {program: '.a = true'}}
      - {name: b, filter: jq, config: {program: '.b = true'}, dedup: {key: .id}}
      - {name: c, filter: jq, config: {program: '.c = true'}}
`, name)
}

// stageLags returns the lag of each stage's group on its input topic.
func stageLags(b testkit.Backend, stages [][2]string) ([]int64, error) {
	c, err := transport.ConnectTimeout(context.Background(), b.Brokers, transport.NewSaramaConfig("millrace-faults-lag"), 10*time.Second)
	if err != nil {
		return nil, err
	}
	admin, err := sarama.NewClusterAdminFromClient(c)
	if err != nil {
		c.Close()
		return nil, err
	}
	defer admin.Close()
	lags := make([]int64, len(stages))
	for i, s := range stages {
		group, topic := s[0], s[1]
		parts, err := c.Partitions(topic)
		if err != nil {
			return nil, fmt.Errorf("partitions of %s: %w", topic, err)
		}
		resp, err := admin.ListConsumerGroupOffsets(group, map[string][]int32{topic: parts})
		if errors.Is(err, sarama.ErrGroupIDNotFound) {
			resp, err = &sarama.OffsetFetchResponse{}, nil // the embedded broker: nothing committed yet
		}
		if err != nil {
			return nil, fmt.Errorf("offsets of %s: %w", group, err)
		}
		if resp.Err != sarama.ErrNoError {
			return nil, fmt.Errorf("offsets of %s: %w", group, resp.Err)
		}
		for _, p := range parts {
			end, err := c.GetOffset(topic, p, sarama.OffsetNewest)
			if err != nil {
				return nil, fmt.Errorf("end of %s/%d: %w", topic, p, err)
			}
			committed := int64(0)
			if blk := resp.GetBlock(topic, p); blk != nil {
				if blk.Err != sarama.ErrNoError {
					return nil, fmt.Errorf("offset of %s on %s/%d: %w", group, topic, p, blk.Err)
				}
				committed = max(blk.Offset, 0)
			}
			lags[i] += end - committed
		}
	}
	return lags, nil
}

// waitDrained waits until every stage's group has committed all of its
// input, failing after timeout with each stage's lag.
func waitDrained(t *testing.T, b testkit.Backend, stages [][2]string, timeout time.Duration) time.Duration {
	t.Helper()
	begin := time.Now()
	var last []int64
	var lastErr error
	for {
		lags, err := stageLags(b, stages)
		if err == nil {
			last, lastErr = lags, nil
			if slices.Max(lags) == 0 {
				return time.Since(begin)
			}
		} else {
			lastErr = err
		}
		if time.Since(begin) > timeout {
			var parts []string
			for i, s := range stages {
				l := "?"
				if last != nil {
					l = strconv.FormatInt(last[i], 10)
				}
				parts = append(parts, fmt.Sprintf("%s on %s: lag %s", s[0], s[1], l))
			}
			t.Fatalf("the pipeline did not drain within %s: %s (last error: %v)\n%s",
				timeout, strings.Join(parts, "; "), lastErr, describeGroups(b, stages))
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// describeGroups says what state each stage's consumer group is in and
// which member owns which partitions.
func describeGroups(b testkit.Backend, stages [][2]string) string {
	c, err := transport.ConnectTimeout(context.Background(), b.Brokers, transport.NewSaramaConfig("millrace-faults-describe"), 10*time.Second)
	if err != nil {
		return fmt.Sprintf("describe groups: %v", err)
	}
	admin, err := sarama.NewClusterAdminFromClient(c)
	if err != nil {
		c.Close()
		return fmt.Sprintf("describe groups: %v", err)
	}
	defer admin.Close()
	var groups []string
	for _, s := range stages {
		groups = append(groups, s[0])
	}
	ds, err := admin.DescribeConsumerGroups(groups)
	if err != nil {
		return fmt.Sprintf("describe groups: %v", err)
	}
	var out strings.Builder
	for _, d := range ds {
		fmt.Fprintf(&out, "group %s: state %s, %d members (error %v)\n", d.GroupId, d.State, len(d.Members), d.Err)
		for id, m := range d.Members {
			var owns []string
			if a, err := m.GetMemberAssignment(); err == nil && a != nil {
				for topic, ps := range a.Topics {
					owns = append(owns, fmt.Sprintf("%s %v", topic, ps))
				}
			}
			fmt.Fprintf(&out, "  member %s (client %s, host %s): %s\n", id, m.ClientId, m.ClientHost, strings.Join(owns, ", "))
		}
	}
	return out.String()
}

// endOffsets returns the end offset of each partition of topic, or nil
// when the broker does not answer.
func endOffsets(b testkit.Backend, topic string) map[int32]int64 {
	c, err := transport.ConnectTimeout(context.Background(), b.Brokers, transport.NewSaramaConfig("millrace-faults-count"), 5*time.Second)
	if err != nil {
		return nil
	}
	defer c.Close()
	parts, err := c.Partitions(topic)
	if err != nil {
		return nil
	}
	ends := map[int32]int64{}
	for _, p := range parts {
		end, err := c.GetOffset(topic, p, sarama.OffsetNewest)
		if err != nil {
			return nil
		}
		ends[p] = end
	}
	return ends
}

func sum(ends map[int32]int64) int64 {
	var n int64
	for _, e := range ends {
		n += e
	}
	return n
}

// fedRecord is a record of the feeder as it comes out of a stage.
type fedRecord struct {
	ID  int    `json:"id"`
	K   string `json:"k"`
	Seq int    `json:"seq"`
	A   bool   `json:"a"`
	B   bool   `json:"b"`
	C   bool   `json:"c"`
}

// topicReport is what a topic holds of the feeder's n records.
type topicReport struct {
	topic   string
	records int
	copies  map[int][]testkit.Record // by id
	missing []int
	// outOfOrder are first copies whose seq is not above the previous
	// first copy's of their key: "key: seq after seq (partition/offset)".
	outOfOrder []string
	bad        []string // not a record of the feeder, or missing a stage's mark
}

func (r *topicReport) dups() (n int, ids []int) {
	for id, cs := range r.copies {
		if len(cs) > 1 {
			n += len(cs) - 1
			ids = append(ids, id)
		}
	}
	sort.Ints(ids)
	return n, ids
}

func (r *topicReport) String() string {
	d, ids := r.dups()
	return fmt.Sprintf("%s: %d records, %d distinct ids, %d duplicates (of %d ids), %d missing, %d out of order",
		r.topic, r.records, len(r.copies), d, len(ids), len(r.missing), len(r.outOfOrder))
}

// readReport reads topic and checks it against ids 0..n-1. marks are the
// stage marks ("a", "b", "c") every record must carry.
func readReport(t *testing.T, b testkit.Backend, topic string, n int, marks string) *topicReport {
	t.Helper()
	recs := b.ReadAll(t, topic)
	r := &topicReport{topic: topic, records: len(recs), copies: map[int][]testkit.Record{}}
	last := map[string]int{}
	for _, rec := range recs {
		var v fedRecord
		if err := json.Unmarshal(rec.Value, &v); err != nil || v.K != string(rec.Key) ||
			(strings.Contains(marks, "a") && !v.A) || (strings.Contains(marks, "b") && !v.B) || (strings.Contains(marks, "c") && !v.C) {
			r.bad = append(r.bad, fmt.Sprintf("%d/%d: %s", rec.Partition, rec.Offset, clip(string(rec.Value), 200)))
			continue
		}
		first := len(r.copies[v.ID]) == 0
		r.copies[v.ID] = append(r.copies[v.ID], rec)
		if !first {
			continue
		}
		if prev, ok := last[v.K]; ok && v.Seq <= prev {
			r.outOfOrder = append(r.outOfOrder, fmt.Sprintf("%s: seq %d after %d (%d/%d)", v.K, v.Seq, prev, rec.Partition, rec.Offset))
		}
		last[v.K] = v.Seq
	}
	for id := 0; id < n; id++ {
		if len(r.copies[id]) == 0 {
			r.missing = append(r.missing, id)
		}
	}
	return r
}

// describeCopies says where each copy of id is in r's topic and what its
// headers say, and quotes the log lines that name the id as a dedup key.
func describeCopies(r *topicReport, id int, logs *faultLogs) string {
	var b strings.Builder
	fmt.Fprintf(&b, "id %d: %d copies in %s:\n", id, len(r.copies[id]), r.topic)
	for _, c := range r.copies[id] {
		fmt.Fprintf(&b, "    %d/%d attempt=%s dedup=%q job=%s\n", c.Partition, c.Offset,
			c.Headers["millrace-attempt"], c.Headers["millrace-dedup"], c.Headers["millrace-job"])
	}
	for _, l := range logs.grep(10, fmt.Sprintf(`key \"%d\"`, id), fmt.Sprintf(`key "%d"`, id), fmt.Sprintf("dedup_key=%d ", id)) {
		fmt.Fprintf(&b, "    log: %s\n", l)
	}
	return b.String()
}
