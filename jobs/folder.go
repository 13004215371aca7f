package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/jonboulle/clockwork"

	"github.com/millrace/millrace/filters"
	"github.com/millrace/millrace/kafkaops"
	"github.com/millrace/millrace/pipeline"
	"github.com/millrace/millrace/transport"
)

// FolderConfig configures [RunFolder].
type FolderConfig struct {
	// Pipeline is the pipeline whose jobs the folder follows; its Results
	// must be set.
	Pipeline pipeline.PipelinePlan
	Brokers  []string
	// Sarama is the consumer group's client config (copied).
	Sarama *sarama.Config
	// Client reads offsets and topics; Publisher writes statuses, replies
	// and callback states.
	Client    sarama.Client
	Publisher *transport.Publisher
	Metrics   *Metrics // nil counts nothing
	Log       *slog.Logger
	// Clock gives the time; nil is the real clock.
	Clock clockwork.Clock
	// Post makes one callback attempt; nil is a Poster with
	// http.DefaultClient's transport (tests inject their own).
	Post func(ctx context.Context, p Pending) error
}

// recentJobs is how many finished jobs a folder keeps in memory per
// partition, so that a late copy of one of their events (a redelivered
// record) does not start them anew, and a record replayed from the
// quarantine re-opens them with what they were.
const recentJobs = 8192

// foldBatch is how many events a folder folds before it writes what
// finished: statuses and replies go in batches.
const foldBatch = 512

// horizon is how long after a job finished a folder that restarts still
// knows it: the commit's metadata names the status offset of that long
// ago, and a restart reads the statuses since. A record redelivered to a
// stage (its process died before committing) after the job finished emits
// its events again; within the horizon they finish nothing twice. Later
// than that, the job can finish a second time: a second reply, and a
// second callback delivery with the same delivery id (at-least-once).
const horizon = 10 * time.Minute

// orphanGrace is how long a job without its first record's event (see
// Job.Rooted) keeps the committed offset from passing its events: a young
// job's first event comes within it; late copies of events of a job
// finished long ago never do, and must not hold the offset for ever.
// orphanForget is when such a job is dropped from memory.
const (
	orphanGrace  = time.Minute
	orphanForget = time.Hour
)

// RunFolder follows the jobs of one pipeline until ctx ends (docs/jobs.md,
// "Where it is kept"): it joins consumer group `millrace.<pipeline>.jobs`
// on the events topic, folds each partition's events, and for each job
// that finishes writes its status to the status topic, sends its reply
// and queues its callback. It returns nil when ctx ends, or the error that
// stopped it.
func RunFolder(ctx context.Context, cfg FolderConfig) error {
	r := cfg.Pipeline.Results
	if r == nil {
		return fmt.Errorf("pipeline %q keeps no results", cfg.Pipeline.Name)
	}
	if cfg.Clock == nil {
		cfg.Clock = clockwork.NewRealClock()
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	cfg.Log = cfg.Log.With("pipeline", cfg.Pipeline.Name, "results", r.EventsTopic)
	f := &folder{cfg: cfg, shape: ShapeOf(cfg.Pipeline), parts: map[int32]*partState{}}
	var err error
	if cb := r.Callback; cb != nil {
		post := cfg.Post
		if post == nil {
			poster, err := NewPoster(PosterConfig{Secret: []byte(cb.Secret), Timeout: cb.Timeout,
				AllowHost: func(host string) bool { return pipeline.CallbackHostAllowed(host, r.CallbackHosts) }})
			if err != nil {
				return fmt.Errorf("results of %s: callback: %w", cfg.Pipeline.Name, err)
			}
			post = poster.Post
		}
		f.calls, err = NewCallbackQueue(CallbackQueueConfig{Post: post, Store: f, Clock: cfg.Clock, Logger: cfg.Log,
			InitialBackoff: cb.RetryInitial, MaxBackoff: cb.RetryMax, OnOutcome: cfg.Metrics.callbackOutcome(cfg.Pipeline.Name)})
		if err != nil {
			return fmt.Errorf("results of %s: callback: %w", cfg.Pipeline.Name, err)
		}
		var calls sync.WaitGroup
		defer calls.Wait() // its last outcomes are recorded before the publisher closes
		calls.Go(func() { _ = f.calls.Run(ctx) })
	}
	sc := *cfg.Sarama
	group, err := sarama.NewConsumerGroup(cfg.Brokers, r.Group, &sc)
	if err != nil {
		return fmt.Errorf("results of %s: join group %s: %w", cfg.Pipeline.Name, r.Group, err)
	}
	defer group.Close()
	go func() {
		for err := range group.Errors() {
			cfg.Log.Warn("results: consumer group", "err", err)
		}
	}()
	for ctx.Err() == nil {
		if err := group.Consume(ctx, []string{r.EventsTopic}, f); err != nil && !errors.Is(err, sarama.ErrClosedConsumerGroup) {
			if ctx.Err() != nil {
				break
			}
			cfg.Log.Warn("results: consume; retrying", "err", err)
			select {
			case <-ctx.Done():
			case <-cfg.Clock.After(time.Second):
			}
		}
	}
	return nil
}

// ShapeOf is the shape of pipeline pp's jobs.
func ShapeOf(pp pipeline.PipelinePlan) *Shape {
	s := &Shape{Pipeline: pp.Name, Output: pp.Output != ""}
	for _, st := range pp.Stages {
		s.Stages = append(s.Stages, st.Name)
	}
	return s
}

// folder is the consumer group handler of RunFolder.
type folder struct {
	cfg   FolderConfig
	shape *Shape
	calls *CallbackQueue // nil without a callback

	mu    sync.Mutex
	parts map[int32]*partState
}

// partState is what a folder knows of one partition of the events topic.
type partState struct {
	p       int32
	running map[string]*runningJob
	recent  *lru.Cache[string, *Job]
	// restored are the status records read at the restore (written
	// since the offset the committed offset's metadata gives) and those
	// written since, each kept for a horizon: the jobs that may finish
	// again (a redelivered record) and must not reply twice. known lists
	// them in the order they came, for the pruning.
	restored map[string]knownStatus
	known    []knownStatus
	// statusNext is the status partition's next offset: only this
	// partition's folder writes it.
	statusNext atomic.Int64
	// callbacks holds the status offset of each job whose callback is
	// pending: the metadata offset must not pass it.
	callbacks map[string]int64
	// samples are the status partition's next offset over the last
	// horizon, oldest first: samples[0].next is the metadata offset.
	samples []sample
	// order holds the running jobs by their first offset (the order they
	// came in); an entry whose job finished is dropped when it reaches
	// the head. orphans are the jobs without their first record's event
	// that stopped holding the offset (see orphanGrace).
	order, orphans []*runningJob
}

// knownStatus is a status of partState.restored and when it came.
type knownStatus struct {
	job string
	rec StatusRecord
	at  time.Time
}

// remember adds rec, the status of job, to the statuses known for a
// horizon.
func (st *partState) remember(job string, rec StatusRecord, now time.Time) {
	k := knownStatus{job, rec, now}
	st.restored[job] = k
	st.known = append(st.known, k)
}

// advanceStatus notes that the status partition's next offset is at least
// next.
func (st *partState) advanceStatus(next int64) {
	for {
		cur := st.statusNext.Load()
		if cur >= next || st.statusNext.CompareAndSwap(cur, next) {
			return
		}
	}
}

// sample is a status partition's next offset at a time.
type sample struct {
	at   time.Time
	next int64
}

// runningJob is a job the folder has not seen finish.
type runningJob struct {
	job *Job
	// first is the offset of its first event; statusAt the status
	// partition's next offset when that event was folded.
	first, statusAt int64
	// since is when the folder first saw it.
	since time.Time
	id    string
}

// StatusRecord is the value of a record on `<pipeline>.jobs.status`, keyed
// by the job id: a finished job's status and what became of its reply and
// callback.
type StatusRecord struct {
	Status   Status         `json:"status"`
	Reply    *ReplyState    `json:"reply,omitempty"`
	Callback *CallbackState `json:"callback,omitempty"`
}

// ReplyState is where a job's reply goes: a reply partition and its end
// offset before the reply was sent, so that a restart can look for it
// there before it sends it again. Refused says the topic is not allowed.
type ReplyState struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	From      int64  `json:"from"`
	Refused   bool   `json:"refused,omitempty"`
}

// CallbackState is a job's callback: pending (with its next attempt),
// delivered or given up.
type CallbackState struct {
	Delivery string    `json:"delivery"`
	State    string    `json:"state"` // pending, delivered, failed
	Attempts int       `json:"attempts"`
	NextAt   time.Time `json:"next_at,omitzero"`
	Deadline time.Time `json:"deadline"`
	Error    string    `json:"error,omitempty"`
}

// Setup restores each claimed partition before its events are folded.
func (f *folder) Setup(sess sarama.ConsumerGroupSession) error {
	r := f.cfg.Pipeline.Results
	for _, p := range sess.Claims()[r.EventsTopic] {
		st, err := f.restore(sess.Context(), p)
		if err != nil {
			return fmt.Errorf("results of %s: restore partition %d: %w", f.cfg.Pipeline.Name, p, err)
		}
		f.mu.Lock()
		f.parts[p] = st
		var pending []Pending
		if f.calls != nil {
			for job := range st.callbacks {
				pending = append(pending, f.pending(st.restored[job].rec))
			}
		}
		f.mu.Unlock()
		// Queued once the partition is known, so that their outcomes
		// release its metadata offset.
		for _, pe := range pending {
			if err := f.calls.Add(pe); err != nil {
				f.cfg.Log.Warn("results: cannot queue a restored callback", "job", pe.Job, "err", err)
			}
		}
	}
	return nil
}

// Cleanup forgets the partitions of the session that ended.
func (f *folder) Cleanup(sess sarama.ConsumerGroupSession) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, p := range sess.Claims()[f.cfg.Pipeline.Results.EventsTopic] {
		delete(f.parts, p)
	}
	return nil
}

// restore reads what partition p's last owner wrote to the status topic
// since its last commit.
func (f *folder) restore(ctx context.Context, p int32) (*partState, error) {
	r := f.cfg.Pipeline.Results
	recent, _ := lru.New[string, *Job](recentJobs)
	st := &partState{p: p, running: map[string]*runningJob{}, recent: recent, restored: map[string]knownStatus{},
		callbacks: map[string]int64{}}
	end, err := kafkaops.GetOffset(ctx, f.cfg.Client, r.StatusTopic, p, sarama.OffsetNewest)
	if err != nil {
		return nil, err
	}
	st.statusNext.Store(end)
	from, err := f.committedMetadata(p)
	if err != nil {
		return nil, err
	}
	// No commit naming where to look from (a new group, or an owner that
	// died before its first commit, whose jobs are folded again from the
	// first event): the whole partition. A named offset retention has
	// passed: from the log start.
	start, err := kafkaops.GetOffset(ctx, f.cfg.Client, r.StatusTopic, p, sarama.OffsetOldest)
	if err != nil {
		return nil, err
	}
	from = max(from, start)
	st.samples = []sample{{at: f.cfg.Clock.Now(), next: min(from, end)}}
	if from >= end {
		return st, nil
	}
	_, err = f.read(ctx, r.StatusTopic, p, from, end, kafkaops.ReadOptions{},
		func(m *sarama.ConsumerMessage) (bool, error) {
			var rec StatusRecord
			if json.Unmarshal(m.Value, &rec) != nil {
				f.cfg.Log.Warn("results: skipped a status record that is not one", "offset", m.Offset)
				return true, nil
			}
			job := string(m.Key)
			st.remember(job, rec, f.cfg.Clock.Now())
			if rec.Callback != nil && rec.Callback.State == "pending" {
				st.callbacks[job] = m.Offset
			} else {
				delete(st.callbacks, job)
			}
			return true, nil
		})
	if err != nil {
		return nil, err
	}
	if n := len(st.restored); n > 0 {
		f.cfg.Log.Info("results: restored recent statuses", "partition", p, "statuses", n, "callbacks_pending", len(st.callbacks))
	}
	return st, nil
}

// committedMetadata is the status offset the folder's last commit on
// partition p named (-1 if none).
func (f *folder) committedMetadata(p int32) (int64, error) {
	r := f.cfg.Pipeline.Results
	_, meta, ok, err := kafkaops.CommittedMetadata(f.cfg.Client, r.Group, r.EventsTopic, p)
	if err != nil || !ok {
		return -1, err
	}
	n, err := strconv.ParseInt(meta, 10, 64)
	if err != nil {
		return -1, nil // not a folder's commit
	}
	return n, nil
}

// ConsumeClaim folds a partition's events, in batches.
func (f *folder) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	f.mu.Lock()
	st := f.parts[claim.Partition()]
	f.mu.Unlock()
	if st == nil {
		return nil
	}
	msgs := claim.Messages()
	for {
		var batch []*sarama.ConsumerMessage
		select {
		case m, ok := <-msgs:
			if !ok {
				return nil
			}
			batch = append(batch, m)
		case <-sess.Context().Done():
			return nil
		}
	more:
		for len(batch) < foldBatch {
			select {
			case m, ok := <-msgs:
				if !ok {
					break more
				}
				batch = append(batch, m)
			default:
				break more
			}
		}
		if err := f.fold(sess, st, batch); err != nil {
			// Not marked: the batch is folded again by whoever owns
			// the partition next.
			f.cfg.Log.Error("results: cannot record finished jobs; rejoining to fold them again", "partition", st.p, "err", err)
			return err
		}
	}
}

// fold folds a batch of events of partition st.p, finishes the jobs it
// completes, and marks the offset a restart must fold from.
func (f *folder) fold(sess sarama.ConsumerGroupSession, st *partState, batch []*sarama.ConsumerMessage) error {
	var finished []*Job
	for _, m := range batch {
		e, err := ParseEvent(string(m.Key), m.Value)
		if err != nil {
			f.cfg.Log.Warn("results: skipped an event", "offset", m.Offset, "err", err)
			continue
		}
		rj := st.running[e.Job]
		if rj == nil {
			j, ok := st.recent.Get(e.Job)
			if !ok {
				j = NewJob(e.Job, f.shape)
			}
			rj = &runningJob{job: j, first: m.Offset, statusAt: st.statusNext.Load(), since: f.cfg.Clock.Now(), id: e.Job}
			st.order = append(st.order, rj)
		}
		wasFinished := rj.job.Finished()
		if changed := rj.job.Add(e); wasFinished && (!changed || rj.job.Finished()) {
			// A late copy of an event of a finished job, or one that
			// changes it but leaves it finished (a quarantine superseding
			// a done): it is not finished twice.
			continue
		}
		st.running[e.Job] = rj
		if rj.job.Finished() {
			finished = append(finished, rj.job)
		}
	}
	if err := f.finish(sess.Context(), st, finished); err != nil {
		return err
	}
	for _, j := range finished {
		delete(st.running, j.ID())
		st.recent.Add(j.ID(), j)
	}
	f.mu.Lock()
	next, meta := st.commitPoint(batch[len(batch)-1].Offset+1, f.cfg.Clock.Now(), f.cfg.Log)
	f.mu.Unlock()
	sess.MarkOffset(f.cfg.Pipeline.Results.EventsTopic, st.p, next, meta)
	return nil
}

// commitPoint is the offset to commit after folding up to next, and its
// metadata: the status offset a restart reads from. Running jobs hold the
// offset at their first event, but jobs without their first record's
// event stop holding it after orphanGrace and are forgotten after
// orphanForget; the metadata goes back a horizon, and to any pending
// callback.
func (st *partState) commitPoint(next int64, now time.Time, log *slog.Logger) (int64, string) {
	if last := st.samples[len(st.samples)-1]; now.Sub(last.at) >= time.Second {
		st.samples = append(st.samples, sample{at: now, next: st.statusNext.Load()})
	}
	for len(st.samples) > 1 && now.Sub(st.samples[1].at) >= horizon {
		st.samples = st.samples[1:]
	}
	for len(st.known) > 0 && now.Sub(st.known[0].at) >= horizon {
		if k := st.known[0]; st.restored[k.job].at.Equal(k.at) { // not remembered again since
			delete(st.restored, k.job)
		}
		st.known[0] = knownStatus{}
		st.known = st.known[1:]
	}
	meta := st.samples[0].next
heads:
	for len(st.order) > 0 {
		h := st.order[0]
		switch {
		case st.running[h.id] != h: // finished
		case !h.job.Rooted() && now.Sub(h.since) >= orphanGrace:
			st.orphans = append(st.orphans, h)
		default:
			next, meta = min(next, h.first), min(meta, h.statusAt)
			break heads
		}
		st.order[0] = nil
		st.order = st.order[1:]
	}
	for len(st.orphans) > 0 && now.Sub(st.orphans[0].since) >= orphanForget {
		h := st.orphans[0]
		if st.running[h.id] == h && !h.job.Rooted() {
			log.Info("results: forgot a job whose first record's event never came", "job", h.id, "partition", st.p)
			delete(st.running, h.id)
		}
		st.orphans[0] = nil
		st.orphans = st.orphans[1:]
	}
	for _, off := range st.callbacks {
		meta = min(meta, off)
	}
	return next, strconv.FormatInt(meta, 10)
}

// finishing is a job the folder saw finish in one batch.
type finishing struct {
	job   *Job
	rec   StatusRecord
	write bool // its status is not in the status topic yet
	reply bool // its reply is to be sent
	check bool // its reply may have been sent before a restart: look first
}

// finish records the jobs that finished in a batch: the statuses of those
// with a reply or callback (in one write), then their replies (in
// another), then their callbacks. A
// job that finished before a restart, whose status is in the topic, is
// not written again; its reply is sent only if it is not on its partition
// after the offset the status names (docs/jobs.md, "Replies").
func (f *folder) finish(ctx context.Context, st *partState, jobs []*Job) error {
	if len(jobs) == 0 {
		return nil
	}
	r := f.cfg.Pipeline.Results
	now := f.cfg.Clock.Now()
	var fs []*finishing
	for _, j := range jobs {
		s := j.Status()
		fin := &finishing{job: j, rec: StatusRecord{Status: s}}
		fs = append(fs, fin)
		f.mu.Lock()
		known, ok := st.restored[j.ID()]
		f.mu.Unlock()
		if ok && known.rec.Status.State == s.State && known.rec.Status.Counts == s.Counts {
			prev := known.rec
			fin.rec = prev
			fin.check = prev.Reply != nil && !prev.Reply.Refused
			continue
		}
		f.cfg.Metrics.finished(f.cfg.Pipeline.Name, s.State)
		if s.ReplyTo != "" {
			if !slices.Contains(r.ReplyTopics, s.ReplyTo) {
				fin.rec.Reply = &ReplyState{Topic: s.ReplyTo, Refused: true}
				f.cfg.Log.Warn("results: reply refused: the topic is not in results.reply_topics", "job", j.ID(),
					"reply_to", s.ReplyTo, "allowed", r.ReplyTopics)
				f.cfg.Metrics.replyRefused(f.cfg.Pipeline.Name)
			} else {
				fin.rec.Reply = &ReplyState{Topic: s.ReplyTo}
				fin.reply = true
			}
		}
		if cb := r.Callback; cb != nil {
			fin.rec.Callback = &CallbackState{Delivery: deliveryID(s), State: "pending", NextAt: now,
				Deadline: s.Finished.Add(cb.RetryDeadline)}
		}
		// Only a job with a reply or a callback needs its status kept:
		// the events are the status; this record guards what must not
		// happen twice.
		fin.write = fin.reply || fin.rec.Callback != nil
	}
	if err := f.replyOffsets(ctx, fs); err != nil {
		return err
	}
	if err := f.checkReplies(ctx, fs); err != nil {
		return err
	}
	if err := f.inline(ctx, fs); err != nil {
		return err
	}
	if err := f.writeStatuses(st, fs); err != nil {
		return err
	}
	var replies []*sarama.ProducerMessage
	for _, fin := range fs {
		if fin.reply {
			replies = append(replies, f.replyRecord(fin))
		}
	}
	if err := f.cfg.Publisher.Send("replies", replies); err != nil {
		return fmt.Errorf("send %d replies: %w", len(replies), err)
	}
	for range replies {
		f.cfg.Metrics.replySent(f.cfg.Pipeline.Name)
	}
	if f.calls != nil {
		for _, fin := range fs {
			if fin.write && fin.rec.Callback != nil {
				if err := f.calls.Add(f.pending(fin.rec)); err != nil {
					f.cfg.Log.Warn("results: cannot queue a callback", "job", fin.job.ID(), "err", err)
				}
			}
		}
	}
	return nil
}

// deliveryID names one callback delivery of a job's outcome: the job id
// and its outcome, so that a job re-opened by a replay and finished again
// gets a new one, and every retry of one delivery the same.
func deliveryID(s Status) string {
	return fmt.Sprintf("%s:%s:%d.%d.%d.%d", s.Job, s.State, s.Counts.Outputs, s.Counts.Dropped, s.Counts.Quarantined, s.Counts.Skipped)
}

// replyOffsets sets, for each reply to send, its partition and that
// partition's end offset now.
func (f *folder) replyOffsets(ctx context.Context, fs []*finishing) error {
	ends := map[Location]int64{}
	for _, fin := range fs {
		if !fin.reply {
			continue
		}
		rs := fin.rec.Reply
		p, err := f.partitionOf(rs.Topic, replyKey(fin.rec.Status))
		if err != nil {
			return err
		}
		k := Location{Topic: rs.Topic, Partition: p}
		end, ok := ends[k]
		if !ok {
			if end, err = kafkaops.GetOffset(ctx, f.cfg.Client, rs.Topic, p, sarama.OffsetNewest); err != nil {
				return err
			}
			ends[k] = end
		}
		rs.Partition, rs.From = p, end
	}
	return nil
}

// partitionOf is the partition of topic a record keyed key goes to.
func (f *folder) partitionOf(topic, key string) (int32, error) {
	ps, err := f.cfg.Client.Partitions(topic)
	if err != nil {
		return 0, fmt.Errorf("reply topic %s: %w", topic, err)
	}
	return transport.NewMurmur2Partitioner(topic).Partition(&sarama.ProducerMessage{Key: sarama.StringEncoder(key)}, int32(len(ps)))
}

// writeStatuses writes the status records of the jobs that need one, in
// one batch, on partition st.p.
func (f *folder) writeStatuses(st *partState, fs []*finishing) error {
	var recs []*sarama.ProducerMessage
	var owners []*finishing
	for _, fin := range fs {
		if fin.write {
			recs = append(recs, f.statusRecord(fin.job.ID(), fin.rec))
			owners = append(owners, fin)
		}
	}
	if err := f.cfg.Publisher.Send(f.cfg.Pipeline.Results.StatusTopic, recs); err != nil {
		return fmt.Errorf("write %d job statuses: %w", len(recs), err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, m := range recs {
		if m.Partition != st.p {
			return fmt.Errorf("job %s: its status went to partition %d of %s, not %d: the events and status topics must have as many partitions",
				owners[i].job.ID(), m.Partition, m.Topic, st.p)
		}
		st.advanceStatus(m.Offset + 1)
		st.remember(owners[i].job.ID(), owners[i].rec, f.cfg.Clock.Now())
		if owners[i].rec.Callback != nil {
			st.callbacks[owners[i].job.ID()] = m.Offset
		}
	}
	return nil
}

// statusRecord is rec as a record of the status topic.
func (f *folder) statusRecord(job string, rec StatusRecord) *sarama.ProducerMessage {
	b, _ := json.Marshal(rec)
	return &sarama.ProducerMessage{Topic: f.cfg.Pipeline.Results.StatusTopic, Key: sarama.StringEncoder(job), Value: sarama.ByteEncoder(b)}
}

// checkReplies decides, for each job that finished before a restart with a
// reply to send, whether the reply is already on its partition.
func (f *folder) checkReplies(ctx context.Context, fs []*finishing) error {
	from := map[Location]int64{} // partition → lowest offset to look from
	want := map[string]*finishing{}
	for _, fin := range fs {
		if !fin.check {
			continue
		}
		rs := fin.rec.Reply
		k := Location{Topic: rs.Topic, Partition: rs.Partition}
		if o, ok := from[k]; !ok || rs.From < o {
			from[k] = rs.From
		}
		want[fin.job.ID()] = fin
		fin.reply = true
	}
	for k, off := range from {
		end, err := kafkaops.GetOffset(ctx, f.cfg.Client, k.Topic, k.Partition, sarama.OffsetNewest)
		if err != nil {
			return err
		}
		_, err = f.read(ctx, k.Topic, k.Partition, off, end, kafkaops.ReadOptions{},
			func(m *sarama.ConsumerMessage) (bool, error) {
				if v, ok := transport.LastHeader(m, filters.HeaderJob); ok {
					if fin := want[string(v)]; fin != nil && fin.rec.Reply.Topic == k.Topic {
						fin.reply = false
					}
				}
				return true, nil
			})
		if err != nil {
			return fmt.Errorf("look for replies sent before a restart in %s: %w", k, err)
		}
	}
	return nil
}

// inline reads the outputs of the jobs whose replies or callbacks go out
// now and puts them in their statuses when their total size is at most
// results.reply_max_bytes.
func (f *folder) inline(ctx context.Context, fs []*finishing) error {
	var ss []*Status
	for _, fin := range fs {
		if fin.reply || fin.write && fin.rec.Callback != nil {
			ss = append(ss, &fin.rec.Status)
		}
	}
	return InlineOutputs(ctx, f.cfg.Client, f.cfg.Pipeline.Results.ReplyMaxBytes, ss...)
}

// replyKey is the key of s's reply: its correlation id, or without one its
// job id.
func replyKey(s Status) string {
	if s.CorrelationID != "" {
		return s.CorrelationID
	}
	return s.Job
}

// replyRecord is the reply of a finished job: its status, keyed by its
// correlation id (or job id).
func (f *folder) replyRecord(fin *finishing) *sarama.ProducerMessage {
	s := fin.rec.Status
	b, _ := json.Marshal(s)
	return &sarama.ProducerMessage{Topic: fin.rec.Reply.Topic, Key: sarama.StringEncoder(replyKey(s)), Value: sarama.ByteEncoder(b),
		Headers: []sarama.RecordHeader{
			{Key: []byte(filters.HeaderJob), Value: []byte(s.Job)},
			{Key: []byte(filters.HeaderCorrelationID), Value: []byte(s.CorrelationID)},
		}}
}

// read reads topic/partition from offset from (or its log start, when
// retention removed the records before it: they are gone) to end
// (exclusive), with a consumer of its own: partitions fold concurrently,
// and a sarama consumer reads a partition once at a time.
func (f *folder) read(ctx context.Context, topic string, partition int32, from, end int64, opts kafkaops.ReadOptions,
	fn func(*sarama.ConsumerMessage) (bool, error)) (bool, error) {
	start, err := kafkaops.GetOffset(ctx, f.cfg.Client, topic, partition, sarama.OffsetOldest)
	if err != nil {
		return false, err
	}
	c, err := sarama.NewConsumerFromClient(f.cfg.Client)
	if err != nil {
		return false, err
	}
	defer c.Close()
	return kafkaops.ReadRangeWith(ctx, c, topic, partition, max(from, start), end, opts, fn)
}
