package jobs

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/IBM/sarama"
	"github.com/cenkalti/backoff/v5"

	"github.com/millrace/millrace/filters"
	"github.com/millrace/millrace/kafkaops"
	"github.com/millrace/millrace/pipeline"
	"github.com/millrace/millrace/transport"
)

// DefaultKeep is how long a finished job is remembered when a pipeline's
// results say nothing else.
const DefaultKeep = pipeline.DefaultResultsKeep

// pruneEvery is how often a view that reads on drops the jobs it forgot.
const pruneEvery = time.Minute

// EventsTopic is the events topic of pipeline p: `<p>.jobs`.
func EventsTopic(p string) string { return pipeline.JobsTopic(p) }

// ErrNoEvents is wrapped by the error of a view whose events topic does
// not exist: its pipeline has not run with `results:` yet.
var ErrNoEvents = errors.New("no events topic")

// errClosed is Wait's error on a closed view.
var errClosed = errors.New("the job view is closed")

// Source is a pipeline with results, as a [View] reads it.
type Source struct {
	// Shape is the pipeline's name and stages, and whether it has an
	// output topic.
	Shape Shape
	// Topic is its events topic ("": EventsTopic(Shape.Pipeline)).
	Topic string
	// Keep is how long a finished job is remembered (0: DefaultKeep); a
	// job that finished longer ago is forgotten: StateUnknown.
	Keep time.Duration
}

func (s *Source) setDefaults() {
	if s.Topic == "" {
		s.Topic = EventsTopic(s.Shape.Pipeline)
	}
	if s.Keep == 0 {
		s.Keep = DefaultKeep
	}
}

// Validate reports what is wrong with s.
func (s Source) Validate() error {
	switch {
	case s.Shape.Pipeline == "":
		return errors.New("no pipeline name")
	case len(s.Shape.Stages) == 0:
		return fmt.Errorf("pipeline %q: no stages", s.Shape.Pipeline)
	case s.Keep < 0:
		return fmt.Errorf("pipeline %q: keep %s: want 0 (the default) or more", s.Shape.Pipeline, s.Keep)
	}
	return nil
}

// ViewConfig says what a [View] reads.
type ViewConfig struct {
	Source
	// Jobs, if set, limits the view to these jobs: it reads only the
	// partitions that hold their events (each job's events are keyed by
	// its id, so they are in one partition) and passes over other jobs'.
	Jobs []string
	// FromEnd starts at the end of each partition instead of its log
	// start: the view sees only events written after it opened (of jobs
	// about to be produced).
	FromEnd bool
	// Follow reads on after the catch-up, every partition, until Close
	// (a view that serves for long). Without it a view reads on only the
	// partitions of the jobs Wait waits for, from the first Wait on.
	Follow bool
	// Compact, if more than 0, is how long after it finished a job's fold
	// stays in memory (about 1.7 KB for a job of three stages); after that
	// the view keeps only where the job's events are (the first and last
	// offset of them in its partition, and its state: about 100 bytes),
	// and StatusOf reads and folds them again. For a view that follows for
	// long, whose memory would otherwise grow by every job of Keep. List
	// does not list compacted jobs.
	Compact time.Duration
	// Offsets, if set, is the client Sync asks the partitions' ends with
	// (nil: the view's): on the view's, the request waits behind the
	// view's fetch, which the broker holds up to its max wait when there is
	// nothing new.
	Offsets sarama.Client
	// Now is the clock (nil: time.Now).
	Now func() time.Time
	// Log gets a debug line for each event passed over (nil: none).
	Log *slog.Logger
}

func (c *ViewConfig) setDefaults() {
	c.Source.setDefaults()
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
}

// View is the status of a pipeline's jobs, folded from the events on its
// events topic (docs/jobs.md). It reads outside any consumer group: every
// partition, or those of ViewConfig.Jobs, from its log start up to the end
// it had when the view opened (the catch-up), then on while it follows or
// Wait waits. An event that is not a job event is passed over and counted
// (Skipped): it never fails the view. A View is safe for concurrent use.
type View struct {
	cfg    ViewConfig
	client sarama.Client
	own    bool            // Close closes client
	parts  []int32         // the partitions the view reads
	only   map[string]bool // ViewConfig.Jobs; nil for all
	nparts int32           // the topic's partition count
	// tail reads on every partition the view reads on, first time: one
	// consumer, so one fetch request in flight per broker (a consumer per
	// partition puts as many long-polling fetches on the client's
	// connection, which answers them one after the other).
	tail sarama.Consumer

	// ctx ends on Close; the partitions read on run on it.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu        sync.Mutex
	jobs      map[string]*Job
	wheres    map[string]*where     // where the events of each job in jobs are (with Compact)
	compacted map[string]*compacted // finished jobs kept as where their events are (Compact)
	forgotten map[string]time.Time  // forgotten jobs, by when
	// expiring are the compacted and the forgotten jobs in the order they
	// were compacted or forgotten, for prune to drop from the front.
	expiring, forgetting fifo
	pruned               time.Time
	next                 map[int32]int64 // the next offset to read, per partition
	tailing              map[int32]bool
	errs                 map[int32]error // why reading on a partition stopped
	skipped              int
	seq                  uint64            // counts changes of status
	touched              map[string]uint64 // the seq of each job's last change
	changed              chan struct{}     // closed, and replaced, on each change
	closed               bool
}

// maxOffsets is how many event offsets a job's where keeps; a job with
// more (a large fan-out) is kept as the range that holds them.
const maxOffsets = 32

// where is where a job's events are in its partition: their offsets, or,
// past maxOffsets of them, the first and the last.
type where struct {
	offsets     []int64 // ascending
	first, last int64   // with many
	many        bool
}

func (w *where) add(off int64) {
	if w.many {
		w.first, w.last = min(w.first, off), max(w.last, off)
		return
	}
	if i, found := slices.BinarySearch(w.offsets, off); !found {
		w.offsets = slices.Insert(w.offsets, i, off)
	}
	if len(w.offsets) > maxOffsets {
		w.first, w.last, w.many, w.offsets = w.offsets[0], w.offsets[len(w.offsets)-1], true, nil
	}
}

// read hands out the records at w, of topic/partition.
func (w *where) read(ctx context.Context, client sarama.Client, topic string, partition int32, fn func(*sarama.ConsumerMessage)) error {
	if w.many {
		return kafkaops.FetchRange(ctx, client, topic, partition, w.first, w.last+1, fn)
	}
	return kafkaops.FetchOffsets(ctx, client, topic, partition, w.offsets, fn)
}

// compacted is a finished job the view keeps as where its events are.
type compacted struct {
	where    *where
	state    State
	finished time.Time
}

// fifo is a queue of job ids with a time each, in the order they came.
type fifo struct {
	ids  []string
	at   []time.Time
	head int
}

func (q *fifo) push(id string, at time.Time) { q.ids, q.at = append(q.ids, id), append(q.at, at) }

// popBefore pops and returns the front ids whose time is before t.
func (q *fifo) popBefore(t time.Time, fn func(id string)) {
	for q.head < len(q.ids) && q.at[q.head].Before(t) {
		fn(q.ids[q.head])
		q.ids[q.head] = ""
		q.head++
	}
	if q.head > 1024 && q.head*2 > len(q.ids) { // reuse the space in front
		q.ids, q.at = slices.Clone(q.ids[q.head:]), slices.Clone(q.at[q.head:])
		q.head = 0
	}
}

// OpenView connects to cluster and opens a view on it (see [NewView]);
// Close closes the connection too.
func OpenView(ctx context.Context, cluster kafkaops.Cluster, cfg ViewConfig) (*View, error) {
	client, err := cluster.Connect(ctx)
	if err != nil {
		return nil, err
	}
	v, err := NewView(ctx, client, cfg)
	if err != nil {
		client.Close()
		return nil, err
	}
	v.own = true
	return v, nil
}

// NewView opens a view of the jobs of cfg's pipeline on client (which the
// caller keeps and closes after the view) and returns once it has caught
// up: read every event up to the ends the partitions had when it opened
// (none with FromEnd). It fails, wrapping ErrNoEvents, when the events
// topic does not exist.
func NewView(ctx context.Context, client sarama.Client, cfg ViewConfig) (*View, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("invalid config: %w", err)
	}
	parts, err := client.Partitions(cfg.Topic)
	if errors.Is(err, sarama.ErrUnknownTopicOrPartition) {
		return nil, fmt.Errorf("pipeline %q: %w: %s does not exist (the pipeline has not run with results: yet)",
			cfg.Shape.Pipeline, ErrNoEvents, cfg.Topic)
	}
	if err != nil {
		return nil, fmt.Errorf("topic %s: %w", cfg.Topic, err)
	}
	v := &View{cfg: cfg, client: client, parts: parts, nparts: int32(len(parts)),
		jobs: map[string]*Job{}, wheres: map[string]*where{}, compacted: map[string]*compacted{},
		forgotten: map[string]time.Time{}, next: map[int32]int64{}, tailing: map[int32]bool{},
		errs: map[int32]error{}, touched: map[string]uint64{}, changed: make(chan struct{})}
	v.ctx, v.cancel = context.WithCancel(context.Background())
	if v.tail, err = sarama.NewConsumerFromClient(client); err != nil {
		return nil, fmt.Errorf("open consumer: %w", err)
	}
	if len(cfg.Jobs) > 0 {
		v.only = map[string]bool{}
		for _, id := range cfg.Jobs {
			v.only[id] = true
		}
		v.parts = v.partitionsOf(cfg.Jobs)
	}
	if err := v.catchUp(ctx); err != nil {
		v.Close()
		return nil, err
	}
	if cfg.Follow {
		v.readOn(v.parts)
	}
	return v, nil
}

// partitionOf is the partition of the events topic that holds the events
// of job id: where millrace's producers put records keyed id (murmur2 of
// the key, as Java clients do).
func (v *View) partitionOf(id string) int32 {
	p, err := transport.NewMurmur2Partitioner(v.cfg.Topic).Partition(
		&sarama.ProducerMessage{Topic: v.cfg.Topic, Key: sarama.StringEncoder(id)}, v.nparts)
	if err != nil { // a string key always encodes
		panic(err)
	}
	return p
}

// partitionsOf are the partitions of the events of ids, in order.
func (v *View) partitionsOf(ids []string) []int32 {
	var ps []int32
	for _, id := range ids {
		if p := v.partitionOf(id); !slices.Contains(ps, p) {
			ps = append(ps, p)
		}
	}
	slices.Sort(ps)
	return ps
}

// catchUp reads each partition up to the end it has now (FromEnd: just
// starts there).
func (v *View) catchUp(ctx context.Context) error {
	ends := map[int32]int64{}
	for _, p := range v.parts {
		end, err := kafkaops.GetOffset(ctx, v.client, v.cfg.Topic, p, sarama.OffsetNewest)
		if err != nil {
			return fmt.Errorf("topic %s partition %d: %w", v.cfg.Topic, p, err)
		}
		start := end
		if !v.cfg.FromEnd {
			if start, err = kafkaops.GetOffset(ctx, v.client, v.cfg.Topic, p, sarama.OffsetOldest); err != nil {
				return fmt.Errorf("topic %s partition %d: %w", v.cfg.Topic, p, err)
			}
		}
		v.next[p], ends[p] = start, end
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make(chan error, len(ends))
	var wg sync.WaitGroup
	for p, end := range ends {
		wg.Go(func() {
			if err := v.read(ctx, p, end, nil); err != nil {
				errs <- err
				cancel()
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return fmt.Errorf("read the jobs of pipeline %q: %w", v.cfg.Shape.Pipeline, err)
	}
	v.mu.Lock()
	v.prune(v.cfg.Now())
	v.mu.Unlock()
	return nil
}

// read folds the events of partition p from where the view is up to end
// (kafkaops.NoEnd: on, until ctx ends). When retention removed events
// before they were read, it goes on from the new log start.
//
// It reads with shared, if not nil (and only once: a partition consumer
// closes asynchronously, and its consumer refuses another of the partition
// until it has), else with a consumer of its own.
func (v *View) read(ctx context.Context, p int32, end int64, shared sarama.Consumer) error {
	for {
		v.mu.Lock()
		from := v.next[p]
		v.mu.Unlock()
		consumer := shared
		if consumer == nil {
			c, err := sarama.NewConsumerFromClient(v.client)
			if err != nil {
				return fmt.Errorf("open consumer: %w", err)
			}
			consumer = c
		}
		// Reading on for ever, sarama's errors pass (a broker restart, a
		// leader moving: it fetches again); only a gone offset ends it.
		_, err := kafkaops.ReadRangeWith(ctx, consumer, v.cfg.Topic, p, from, end, kafkaops.ReadOptions{Patient: end == kafkaops.NoEnd}, v.fold)
		if consumer != shared {
			consumer.Close() // not the client: only what the consumer opened
		}
		shared = nil
		if !errors.Is(err, sarama.ErrOffsetOutOfRange) {
			return err
		}
		start, serr := kafkaops.GetOffset(ctx, v.client, v.cfg.Topic, p, sarama.OffsetOldest)
		if serr != nil || start <= from {
			return err
		}
		v.mu.Lock()
		v.next[p] = max(v.next[p], start)
		v.broadcast() // for Sync
		v.mu.Unlock()
	}
}

// fold folds the event of record m into its job.
func (v *View) fold(m *sarama.ConsumerMessage) (bool, error) {
	id := string(m.Key)
	v.mu.Lock()
	defer v.mu.Unlock()
	v.next[m.Partition] = m.Offset + 1
	if _, gone := v.forgotten[id]; gone || (v.only != nil && !v.only[id]) {
		v.broadcast() // for Sync
		return true, nil
	}
	e, err := ParseEvent(id, m.Value)
	if err == nil && id == "" {
		err = errors.New("a job event without a key (the job id)")
	}
	if err != nil {
		v.skipped++
		v.cfg.Log.Debug("passed over a record that is not a job event", "topic", m.Topic, "partition", m.Partition,
			"offset", m.Offset, "err", err)
		v.broadcast() // for Sync
		return true, nil
	}
	if c := v.compacted[id]; c != nil {
		// A late copy, or a replay re-opening the job: StatusOf reads it
		// with the others, and takes the job back in if it re-opened.
		c.where.add(m.Offset)
	} else {
		j := v.jobs[id]
		if j == nil {
			j = NewJob(id, &v.cfg.Shape)
			v.jobs[id] = j
		}
		// Even a duplicate may move the job's Updated time: always a change.
		j.Add(e)
		if v.cfg.Compact > 0 {
			w := v.wheres[id]
			if w == nil {
				w = &where{}
				v.wheres[id] = w
			}
			w.add(m.Offset)
		}
	}
	v.seq++
	v.touched[id] = v.seq
	v.broadcast()
	if now := v.cfg.Now(); now.Sub(v.pruned) >= pruneEvery {
		v.prune(now)
	}
	return true, nil
}

// broadcast wakes every Wait. v.mu is held.
func (v *View) broadcast() {
	close(v.changed)
	v.changed = make(chan struct{})
}

// prune forgets the jobs that finished more than Keep before now, and
// those unfinished whose last event is older than the events topic keeps
// records (Keep plus an hour: a job that lost its events, such as the
// accepted event of a record Kafka then refused); compacts (Compact) the
// jobs finished longer ago than Compact; and drops what it remembers of
// those it forgot more than Keep ago (their events are gone by then).
// v.mu is held.
func (v *View) prune(now time.Time) {
	v.pruned = now
	forget := func(id string) {
		delete(v.jobs, id)
		delete(v.wheres, id)
		delete(v.compacted, id)
		delete(v.touched, id)
		v.forgotten[id] = now
		v.forgetting.push(id, now)
	}
	v.forgetting.popBefore(now.Add(-v.cfg.Keep), func(id string) { delete(v.forgotten, id) })
	v.expiring.popBefore(now.Add(-v.cfg.Keep), func(id string) {
		if c := v.compacted[id]; c != nil && now.Sub(c.finished) > v.cfg.Keep {
			forget(id)
		}
	})
	var done []struct {
		id string
		at time.Time
	}
	for id, j := range v.jobs {
		s := j.Status()
		switch {
		case v.expired(s, now) || s.Finished == nil && now.Sub(s.Updated) > v.cfg.Keep+time.Hour:
			forget(id)
		case v.cfg.Compact > 0 && s.Finished != nil && now.Sub(*s.Finished) > v.cfg.Compact:
			c := &compacted{where: v.wheres[id], state: s.State, finished: *s.Finished}
			v.compacted[id] = c
			done = append(done, struct {
				id string
				at time.Time
			}{id, c.finished})
			delete(v.jobs, id)
			delete(v.wheres, id)
			delete(v.touched, id) // its status no longer changes in memory
		}
	}
	// In the order they finished, so that expiring stays (nearly) ordered.
	slices.SortFunc(done, func(a, b struct {
		id string
		at time.Time
	}) int {
		return a.at.Compare(b.at)
	})
	for _, d := range done {
		v.expiring.push(d.id, d.at)
	}
}

// expired reports whether s finished more than Keep before now.
func (v *View) expired(s Status, now time.Time) bool {
	return s.Finished != nil && now.Sub(*s.Finished) > v.cfg.Keep
}

// Status is the status of job id: StateUnknown when the view has seen no
// event of it, when it finished more than Keep ago, or when it is not one
// of ViewConfig.Jobs.
func (v *View) Status(id string) Status {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.status(id, v.cfg.Now())
}

// status is Status with v.mu held. Of a compacted job it knows only the
// state and when it finished.
func (v *View) status(id string, now time.Time) Status {
	if j := v.jobs[id]; j != nil {
		if s := j.Status(); !v.expired(s, now) {
			return s
		}
	}
	if c := v.compacted[id]; c != nil && now.Sub(c.finished) <= v.cfg.Keep {
		return Status{Job: id, Pipeline: v.cfg.Shape.Pipeline, State: c.state, Finished: &c.finished}
	}
	return Status{Job: id, Pipeline: v.cfg.Shape.Pipeline, State: StateUnknown}
}

// StatusOf is the status of job id as Status gives it, but whole also for
// a job the view compacted (ViewConfig.Compact): it reads the job's events
// again, with direct fetches of their offsets (kafkaops.FetchOffsets), and
// folds them; a job that a later event re-opened is taken back into
// memory, so that Wait sees it change. Errors are reading's; a job whose
// events retention removed meanwhile is StateUnknown.
func (v *View) StatusOf(ctx context.Context, id string) (Status, error) {
	unknown := Status{Job: id, Pipeline: v.cfg.Shape.Pipeline, State: StateUnknown}
	for {
		v.mu.Lock()
		now := v.cfg.Now()
		c := v.compacted[id]
		if c == nil || now.Sub(c.finished) > v.cfg.Keep {
			defer v.mu.Unlock()
			return v.status(id, now), nil
		}
		w := *c.where
		w.offsets = slices.Clone(w.offsets)
		v.mu.Unlock()
		j, n := NewJob(id, &v.cfg.Shape), 0
		err := w.read(ctx, v.client, v.cfg.Topic, v.partitionOf(id), func(m *sarama.ConsumerMessage) {
			if string(m.Key) != id {
				return
			}
			if e, err := ParseEvent(id, m.Value); err == nil {
				j.Add(e)
				n++
			}
		})
		if err != nil {
			return unknown, fmt.Errorf("read the events of job %s: %w", id, err)
		}
		if n == 0 {
			return unknown, nil
		}
		s := j.Status()
		if s.State == c.state {
			return s, nil
		}
		// Re-opened (or finished otherwise): back into memory, unless an
		// event came meanwhile — then read again.
		v.mu.Lock()
		if v.compacted[id] != c || !slices.Equal(c.where.offsets, w.offsets) || c.where.last != w.last || c.where.many != w.many {
			v.mu.Unlock()
			continue
		}
		delete(v.compacted, id)
		v.jobs[id], v.wheres[id] = j, c.where
		v.seq++
		v.touched[id] = v.seq
		v.broadcast()
		v.mu.Unlock()
		return s, nil
	}
}

// Filter picks the jobs [View.List] lists; the zero Filter picks all.
type Filter struct {
	// State, if set, keeps the jobs in that state.
	State State
	// Since, if set, keeps the jobs started (their first event) at or
	// after it.
	Since time.Time
	// Limit, if more than 0, keeps the newest Limit jobs.
	Limit int
}

// List returns the status of the jobs f picks, newest (last started)
// first; forgotten jobs are not listed.
func (v *View) List(f Filter) []Status {
	v.mu.Lock()
	defer v.mu.Unlock()
	now := v.cfg.Now()
	var out []Status
	for _, j := range v.jobs {
		s := j.Status()
		if v.expired(s, now) || (f.State != "" && s.State != f.State) || (!f.Since.IsZero() && s.Started.Before(f.Since)) {
			continue
		}
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b Status) int { return cmp.Or(b.Started.Compare(a.Started), cmp.Compare(a.Job, b.Job)) })
	if f.Limit > 0 && len(out) > f.Limit {
		out = out[:f.Limit]
	}
	return out
}

// Skipped is how many records of the events topic the view passed over
// because they are not job events (not JSON, a newer format, no key).
func (v *View) Skipped() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.skipped
}

// Wait waits until every job of ids is finished (succeeded or failed) and
// returns their statuses, in the order of ids. It reads on the partitions
// that hold their events, from where the view is, until Close. When ctx
// ends first it returns their statuses then with ctx's error, and when
// reading a partition fails, with that error. A job the view has not seen
// (or forgot) is not finished: Wait waits for it.
func (v *View) Wait(ctx context.Context, ids ...string) ([]Status, error) {
	for _, id := range ids {
		if v.only != nil && !v.only[id] {
			return nil, fmt.Errorf("job %q is not one of the view's jobs", id)
		}
	}
	parts := v.partitionsOf(ids)
	v.readOn(parts)
	out := make([]Status, len(ids))
	pending := make([]int, len(ids))
	for i := range ids {
		pending[i] = i
	}
	first, seen := true, uint64(0)
	for {
		v.mu.Lock()
		now := v.cfg.Now()
		rest := pending[:0]
		for _, i := range pending {
			if first || v.touched[ids[i]] > seen {
				out[i] = v.status(ids[i], now)
			}
			if !out[i].State.Finished() {
				rest = append(rest, i)
			}
		}
		pending, first, seen = rest, false, v.seq
		changed, closed := v.changed, v.closed
		var err error
		for _, p := range parts {
			err = cmp.Or(err, v.errs[p])
		}
		v.mu.Unlock()
		switch {
		case len(pending) == 0:
			return out, nil
		case err != nil:
			return out, err
		case closed:
			return out, errClosed
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return out, ctx.Err()
		}
	}
}

// readOn starts reading on each of parts (up to Close) that the view does
// not read on yet.
func (v *View) readOn(parts []int32) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.closed {
		return
	}
	for _, p := range parts {
		if v.tailing[p] {
			continue
		}
		v.tailing[p] = true
		v.wg.Go(func() { v.readOnPartition(p) })
	}
}

// readOnPartition reads partition p on until Close. When reading fails,
// the error is kept for Wait and Sync to return; a view that follows
// tries again with backoff (250 ms doubling to 5 s), logging each error,
// and drops the error as it does.
func (v *View) readOnPartition(p int32) {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval, b.MaxInterval = 250*time.Millisecond, 5*time.Second
	shared := v.tail
	for {
		err := v.read(v.ctx, p, kafkaops.NoEnd, shared)
		shared = nil
		if err == nil || v.ctx.Err() != nil {
			return
		}
		err = fmt.Errorf("read the jobs of pipeline %q: %w", v.cfg.Shape.Pipeline, err)
		v.mu.Lock()
		v.errs[p] = err
		v.broadcast()
		v.mu.Unlock()
		if !v.cfg.Follow {
			return
		}
		wait := b.NextBackOff()
		v.cfg.Log.Warn("reading job events failed; trying again", "topic", v.cfg.Topic, "partition", p, "retry_in", wait, "err", err)
		select {
		case <-v.ctx.Done():
			return
		case <-time.After(wait):
		}
		v.mu.Lock()
		delete(v.errs, p)
		v.mu.Unlock()
	}
}

// Sync waits until the view has read every event of the jobs ids that was
// in Kafka when it was called (their partitions' ends then), so that a
// status read after it reflects what any writer had written before: a
// job accepted by another process is not unknown here. It reads on those
// partitions until Close, as Wait does. It returns ctx's error if ctx ends
// first, and the error of reading a partition if that fails.
func (v *View) Sync(ctx context.Context, ids ...string) error {
	parts := v.partitionsOf(ids)
	ends := make(map[int32]int64, len(parts))
	client := cmp.Or[sarama.Client](v.cfg.Offsets, v.client)
	for _, p := range parts {
		end, err := kafkaops.GetOffset(ctx, client, v.cfg.Topic, p, sarama.OffsetNewest)
		if err != nil {
			return fmt.Errorf("topic %s partition %d: %w", v.cfg.Topic, p, err)
		}
		ends[p] = end
	}
	v.readOn(parts)
	for {
		v.mu.Lock()
		behind := false
		var err error
		for p, end := range ends {
			behind = behind || v.next[p] < end
			err = cmp.Or(err, v.errs[p])
		}
		changed, closed := v.changed, v.closed
		v.mu.Unlock()
		switch {
		case !behind:
			return nil
		case err != nil:
			return err
		case closed:
			return errClosed
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Close stops reading (and closes the view's client, if OpenView opened
// it). A Wait still waiting returns an error.
func (v *View) Close() error {
	v.mu.Lock()
	if v.closed {
		v.mu.Unlock()
		return nil
	}
	v.closed = true
	v.broadcast()
	v.mu.Unlock()
	v.cancel()
	v.wg.Wait()
	v.tail.Close()
	if v.own {
		return v.client.Close()
	}
	return nil
}

// FindOptions say which job [Find] looks for, where, and whether it waits.
type FindOptions struct {
	kafkaops.Cluster
	// Sources are the pipelines to look in.
	Sources []Source
	// Job is the job's id.
	Job string
	// Wait, if more than 0, is how long to wait for the job to finish.
	Wait time.Duration
	// Now is the clock (nil: time.Now).
	Now func() time.Time
	// Log gets a debug line for each event passed over (nil: none).
	Log *slog.Logger
}

// Found is what [Find] found.
type Found struct {
	// Status is the job's status; StateUnknown when no source has seen it
	// (or each forgot it).
	Status Status
	// TimedOut says FindOptions.Wait passed before the job finished.
	TimedOut bool
	// Skipped counts the records passed over as not job events.
	Skipped int
	// NoEvents are the sources whose events topic does not exist yet.
	NoEvents []string
}

// Find looks for a job in each source, reading only the partition that
// holds its events, and with opts.Wait waits until it finishes in one of
// them (in the one it was found in, if it was).
func Find(ctx context.Context, opts FindOptions) (f Found, err error) {
	f.Status = Status{Job: opts.Job, State: StateUnknown}
	if len(opts.Sources) == 1 {
		f.Status.Pipeline = opts.Sources[0].Shape.Pipeline
	}
	client, err := opts.Cluster.Connect(ctx)
	if err != nil {
		return f, err
	}
	defer client.Close()
	var views []*View
	defer func() {
		for _, v := range views {
			f.Skipped += v.Skipped()
			v.Close()
		}
	}()
	for _, src := range opts.Sources {
		v, err := NewView(ctx, client, ViewConfig{Source: src, Jobs: []string{opts.Job}, Now: opts.Now, Log: opts.Log})
		if errors.Is(err, ErrNoEvents) {
			f.NoEvents = append(f.NoEvents, src.Shape.Pipeline)
			continue
		}
		if err != nil {
			return f, err
		}
		views = append(views, v)
		if s := v.Status(opts.Job); s.State != StateUnknown && f.Status.State == StateUnknown {
			f.Status = s
			views[0], views[len(views)-1] = views[len(views)-1], views[0]
		}
	}
	if opts.Wait <= 0 || f.Status.State.Finished() || len(views) == 0 {
		return f, nil
	}
	waitOn := views
	if f.Status.State != StateUnknown {
		waitOn = views[:1] // the view it was found in
	}
	f.Status, f.TimedOut, err = WaitAny(ctx, opts.Wait, opts.Job, waitOn)
	return f, err
}

// WaitAny waits up to d for job id to finish in one of views, and returns
// its status then: the finished one, else the first known one; timedOut
// says d passed first. It returns ctx's error when ctx ends first, and the
// error of a view's reading when that fails.
func WaitAny(ctx context.Context, d time.Duration, id string, views []*View) (Status, bool, error) {
	wctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	type waited struct {
		s   []Status
		err error
	}
	ch := make(chan waited, len(views))
	for _, v := range views {
		go func() {
			s, err := v.Wait(wctx, id)
			ch <- waited{s, err}
		}()
	}
	var done *Status
	var failed error
	for range views {
		w := <-ch
		switch {
		case w.err == nil && done == nil:
			done = &w.s[0]
			cancel() // the others
		case w.err != nil && wctx.Err() == nil:
			failed = w.err
			cancel()
		}
	}
	if done != nil {
		return *done, false, nil
	}
	s := views[0].Status(id)
	for _, v := range views {
		if vs := v.Status(id); vs.State != StateUnknown {
			s = vs
			break
		}
	}
	switch {
	case failed != nil:
		return s, false, failed
	case ctx.Err() != nil:
		return s, false, ctx.Err()
	}
	return s, true, nil
}

// ListOptions say whose jobs [ListJobs] lists.
type ListOptions struct {
	kafkaops.Cluster
	Source Source
	Filter Filter
	// Now is the clock (nil: time.Now).
	Now func() time.Time
	// Log gets a debug line for each event passed over (nil: none).
	Log *slog.Logger
}

// Listed is what [ListJobs] lists.
type Listed struct {
	// Jobs are their statuses, newest first.
	Jobs []Status
	// Skipped counts the records passed over as not job events.
	Skipped int
}

// ListJobs reads a pipeline's events topic up to its end now and lists
// the jobs opts.Filter picks. A pipeline whose events topic does not
// exist yet is an error wrapping ErrNoEvents.
func ListJobs(ctx context.Context, opts ListOptions) (Listed, error) {
	v, err := OpenView(ctx, opts.Cluster, ViewConfig{Source: opts.Source, Now: opts.Now, Log: opts.Log})
	if err != nil {
		return Listed{}, err
	}
	defer v.Close()
	return Listed{Jobs: v.List(opts.Filter), Skipped: v.Skipped()}, nil
}

// ProduceOptions say what [ProduceAndWait] produces and waits for.
type ProduceOptions struct {
	kafkaops.ProduceOptions
	// Source is the pipeline's results; its Topic is Events' name.
	Source Source
	// Events is the pipeline's events topic, as it is created if it does
	// not exist.
	Events pipeline.Topic
	// Timeout bounds the wait for the jobs to finish (0: until ctx ends).
	Timeout time.Duration
	// Now is the clock (nil: time.Now); it times the accepted events.
	Now func() time.Time
}

// ProduceResult is what [ProduceAndWait] did.
type ProduceResult struct {
	kafkaops.ProduceResult
	// Statuses are the statuses of the jobs sent (ProduceResult.Jobs)
	// when the wait ended, in the same order.
	Statuses []Status
	// TimedOut says Timeout passed before every job finished.
	TimedOut bool
	// Skipped counts the records passed over as not job events.
	Skipped int
}

// ProduceAndWait produces as [kafkaops.Produce] does, each record after
// the accepted event of its job on the events topic (with the record's
// millrace-reply-to and millrace-correlation-id headers), then waits until
// every job it sent finished, or Timeout passed (TimedOut, no error), or
// ctx ended (ctx's error). It reads only the events written after it
// started, of the partitions of its jobs.
func ProduceAndWait(ctx context.Context, opts ProduceOptions) (ProduceResult, error) {
	var res ProduceResult
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	src := opts.Source
	if src.Topic == "" {
		src.Topic = opts.Events.Name
	}
	if src.Topic != opts.Events.Name {
		return res, fmt.Errorf("invalid config: events topic %q, but the source's is %q", opts.Events.Name, src.Topic)
	}
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	client, err := opts.Cluster.Connect(ctx)
	if err != nil {
		return res, err
	}
	defer client.Close()
	if err := kafkaops.EnsureTopics(client, []pipeline.Topic{opts.Events}, opts.ReplicationFactor, log); err != nil {
		return res, err
	}
	v, err := NewView(ctx, client, ViewConfig{Source: src, FromEnd: true, Now: now, Log: opts.Log})
	if err != nil {
		return res, err
	}
	defer v.Close()
	po := opts.ProduceOptions
	po.Announce = &kafkaops.Announce{Topic: opts.Events, Value: func(job string, hs []kafkaops.Header) []byte {
		return AcceptedEvent(job, now(), hs).Marshal()
	}}
	if res.ProduceResult, err = kafkaops.Produce(ctx, po); err != nil {
		return res, err
	}
	wctx := ctx
	if opts.Timeout > 0 {
		var cancel context.CancelFunc
		wctx, cancel = context.WithTimeout(ctx, opts.Timeout)
		defer cancel()
	}
	res.Statuses, err = v.Wait(wctx, res.Jobs...)
	res.Skipped = v.Skipped()
	if err != nil && ctx.Err() == nil && wctx.Err() != nil {
		res.TimedOut, err = true, nil
	}
	return res, err
}

// AcceptedEvent is the accepted event of job id, produced at at with the
// record headers hs.
func AcceptedEvent(id string, at time.Time, hs []kafkaops.Header) Event {
	e := Event{Job: id, Outcome: Accepted, At: at}
	for _, h := range hs { // the last of a name wins, as Kafka's lastHeader
		switch string(h.Key) {
		case filters.HeaderReplyTo:
			e.ReplyTo = string(h.Value)
		case filters.HeaderCorrelationID:
			e.CorrelationID = string(h.Value)
		}
	}
	return e
}
