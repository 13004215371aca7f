package kafkaops

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"

	"github.com/IBM/sarama"
	"github.com/google/uuid"

	"github.com/millrace/millrace/filters"
	"github.com/millrace/millrace/pipeline"
	"github.com/millrace/millrace/transport"
)

// Why [ReplayQuarantine] did not send a record: the keys of
// ReplayResult.Skipped and ReplayResult.Failed.
const (
	SkipNotSelected = "not selected"
	SkipReplayed    = "already replayed"
	SkipMaxReplays  = "max replays reached"
	SkipLimit       = "over --limit"
	FailNoStage     = "stage not in the pipelines file"
	FailTruncated   = "truncated: too large to quarantine whole (millrace-truncated); replay it from its origin"
)

// DefaultMaxReplays is ReplayQuarantineOptions.MaxReplays when it is 0.
const DefaultMaxReplays = 3

// ReplayQuarantineOptions says which quarantined records
// [ReplayQuarantine] sends back, and how.
type ReplayQuarantineOptions struct {
	Cluster
	// Pipeline is the pipeline whose quarantine topic is read; a record
	// goes to the input topic of its stage named by millrace-stage.
	Pipeline *pipeline.PipelinePlan
	// ReplicationFactor is that of the progress topic when it is created
	// (-1: the broker's default).
	ReplicationFactor int
	Select            QuarantineSelection
	// Limit is how many records to send at most; 0 is no limit.
	Limit int
	// Rate is how many records to send per second at most; 0 is no limit.
	Rate float64
	// MaxReplays refuses records whose millrace-replays is at least this
	// (default [DefaultMaxReplays]).
	MaxReplays int
	// DryRun counts what would be sent and sends (and creates) nothing.
	DryRun bool
	// Log gets a line when the progress topic is created (nil: none).
	Log *slog.Logger
	// Progress, if set, is called after each record read.
	Progress func(Progress)
}

// ReplayResult counts what [ReplayQuarantine] did.
type ReplayResult struct {
	// Sent is how many records were sent (in a dry run: would be).
	Sent int
	// SentTo counts them by the topic they went to.
	SentTo map[string]int
	// Skipped and Failed count records not sent, by reason (Skip… and
	// Fail…). A failure is a record the user must see to: the command
	// line exits 1 for any.
	Skipped, Failed map[string]int
}

// ReplayQuarantine sends quarantined records of opts.Pipeline back to the
// input topic of the stage that failed them (the millrace-stage header):
// same key and payload, the headers without the failure headers, the
// stage and the attempt count (so the stage's attempts start again), with
// millrace-replays incremented and a new message id. Records are read
// partition by partition, oldest first, up to the end each partition had
// when the run began: a record it sent that fails again and is
// quarantined anew is not sent again by the same run.
//
// It is resumable and sends each record at most once: every record sent
// is written, once the broker acknowledged it, to the compacted topic
// [pipeline.ReplayedTopic] keyed by its quarantine partition/offset, and
// records found there are never sent again, whatever the selection of the
// run that sent them (a crash between the two writes can send one twice).
// A consumer group's committed offset would not do: it would mark records
// a selective run left alone as done.
//
// A record is skipped when not selected, already replayed, replayed
// MaxReplays times or over the limit; it fails when it is an envelope
// (millrace-truncated: its payload was cut, replay it from its origin) or
// its stage is not in the pipeline. The result is valid (counting what was
// done) also when an error stops the run; an error that stops it before it
// began (it cannot connect) wraps [ErrNotStarted].
func ReplayQuarantine(ctx context.Context, opts ReplayQuarantineOptions) (ReplayResult, error) {
	if opts.MaxReplays == 0 {
		opts.MaxReplays = DefaultMaxReplays
	}
	r := &quarantineReplay{opts: opts, done: pipeline.ReplayedTopic(opts.Pipeline.Name), replayed: map[string]bool{},
		res: ReplayResult{SentTo: map[string]int{}, Skipped: map[string]int{}, Failed: map[string]int{}}}
	client, err := opts.Connect(ctx)
	if err != nil {
		return r.res, notStarted(err)
	}
	defer client.Close()
	err = r.run(ctx, client)
	return r.res, err
}

type quarantineReplay struct {
	opts     ReplayQuarantineOptions
	done     string          // the progress topic
	replayed map[string]bool // partition/offset of the records sent
	producer sarama.SyncProducer
	pace     *pacer
	res      ReplayResult
}

func (r *quarantineReplay) run(ctx context.Context, client sarama.Client) error {
	quarantine := r.opts.Pipeline.Quarantine
	_, existing, err := listTopics(client)
	if err != nil {
		return err
	}
	if _, ok := existing[quarantine]; !ok {
		return nil // nothing was ever quarantined
	}
	if err := r.readProgress(ctx, client, existing); err != nil {
		return err
	}
	if !r.opts.DryRun {
		if r.producer, err = r.opts.syncProducer(); err != nil {
			return notStarted(err)
		}
		defer r.producer.Close()
	}
	r.pace = newPacer(r.opts.Rate)
	defer r.pace.stop()
	var total int64
	if r.opts.Progress != nil {
		total = backlog(ctx, client, quarantine, nil)
	}
	step := progressTo(r.opts.Progress, total)
	return scan(ctx, client, quarantine, nil, func(m *Record) (bool, error) {
		sent := r.res.Sent
		more, err := r.one(ctx, m)
		step(r.res.Sent > sent)
		return more, err
	})
}

// readProgress creates the progress topic if it is missing (not in a dry
// run) and reads which records were sent already.
func (r *quarantineReplay) readProgress(ctx context.Context, client sarama.Client, existing map[string]sarama.TopicDetail) error {
	_, ok := existing[r.done]
	if !ok && !r.opts.DryRun {
		log := r.opts.Log
		if log == nil {
			log = slog.New(slog.DiscardHandler)
		}
		err := EnsureTopics(client, []pipeline.Topic{{Name: r.done, Partitions: 1,
			Config: map[string]string{"cleanup.policy": "compact"}}}, r.opts.ReplicationFactor, log)
		if err != nil {
			return err
		}
		ok = true
	}
	if !ok {
		return nil
	}
	var err error
	r.replayed, err = scanReplayed(ctx, client, r.done)
	return err
}

// one replays quarantined record m, or counts why not.
func (r *quarantineReplay) one(ctx context.Context, m *Record) (bool, error) {
	id := replayID(m)
	switch {
	case !r.opts.Select.Selects(m):
		r.res.Skipped[SkipNotSelected]++
		return true, nil
	case r.replayed[id]:
		r.res.Skipped[SkipReplayed]++
		return true, nil
	}
	if _, ok := transport.LastHeader(m, filters.HeaderTruncated); ok {
		r.res.Failed[FailTruncated]++
		return true, nil
	}
	n, _ := strconv.Atoi(header(m, filters.HeaderReplays))
	if n >= r.opts.MaxReplays {
		r.res.Skipped[SkipMaxReplays]++
		return true, nil
	}
	input, ok := r.stageInput(header(m, filters.HeaderStage))
	if !ok {
		r.res.Failed[FailNoStage]++
		return true, nil
	}
	if r.opts.Limit > 0 && r.res.Sent >= r.opts.Limit {
		r.res.Skipped[SkipLimit]++
		return true, nil
	}
	if r.opts.DryRun {
		r.res.Sent++
		r.res.SentTo[input]++
		return true, nil
	}
	if err := r.send(ctx, m, id, input, n+1); err != nil {
		return false, err
	}
	return true, nil
}

// stageInput is the input topic of the pipeline's stage called name.
func (r *quarantineReplay) stageInput(name string) (string, bool) {
	for _, st := range r.opts.Pipeline.Stages {
		if st.Name == name {
			return st.Input, true
		}
	}
	return "", false
}

// send sends m to input, counts it as sent, then records it as replayed
// (a record sent whose mark fails is counted: the error says so).
func (r *quarantineReplay) send(ctx context.Context, m *Record, id, input string, replays int) error {
	if err := r.pace.wait(ctx); err != nil {
		return err
	}
	out := &sarama.ProducerMessage{Topic: input, Value: sarama.ByteEncoder(m.Value), Headers: replayHeaders(m, replays)}
	if m.Key != nil {
		out.Key = sarama.ByteEncoder(m.Key)
	}
	if _, _, err := r.producer.SendMessage(out); err != nil {
		return fmt.Errorf("send %s/%s to %s: %w", m.Topic, id, input, err)
	}
	r.res.Sent++
	r.res.SentTo[input]++
	mark := &sarama.ProducerMessage{Topic: r.done, Key: sarama.StringEncoder(id),
		Value: sarama.StringEncoder(fmt.Sprintf("%s/%d/%d", input, out.Partition, out.Offset))}
	if _, _, err := r.producer.SendMessage(mark); err != nil {
		return fmt.Errorf("record %s/%s as replayed (it was sent to %s): %w", m.Topic, id, input, err)
	}
	return nil
}

// replayHeaders are a quarantined record's headers as it goes back to its
// stage: without the failure headers, the stage and the attempt count,
// with a new message id and millrace-replays set to replays.
func replayHeaders(m *Record, replays int) []sarama.RecordHeader {
	drop := map[string]bool{filters.HeaderAttempt: true, filters.HeaderStage: true, filters.HeaderReplays: true,
		transport.MessageIDHeader: true}
	for _, h := range filters.FailureHeaders() {
		drop[h] = true
	}
	var out []sarama.RecordHeader
	for _, h := range m.Headers {
		if !drop[string(h.Key)] {
			out = append(out, sarama.RecordHeader{Key: h.Key, Value: h.Value})
		}
	}
	return append(out,
		sarama.RecordHeader{Key: []byte(filters.HeaderReplays), Value: []byte(strconv.Itoa(replays))},
		sarama.RecordHeader{Key: []byte(transport.MessageIDHeader), Value: []byte(uuid.NewString())})
}
