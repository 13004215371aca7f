package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/IBM/sarama"
	"github.com/google/uuid"
	"github.com/spf13/cobra"

	"github.com/millrace/millrace/filters"
	"github.com/millrace/millrace/kafkaops"
	"github.com/millrace/millrace/pipeline"
	"github.com/millrace/millrace/transport"
)

// Reasons a quarantined record is not sent.
const (
	skipNotSelected = "not selected"
	skipReplayed    = "already replayed"
	skipMaxReplays  = "max replays reached"
	skipLimit       = "over --limit"
	failNoStage     = "stage not in the pipelines file"
	failTruncated   = "truncated: too large to quarantine whole (millrace-truncated); replay it from its origin"
)

func newReplayQuarantineCmd(g *globals) *cobra.Command {
	var (
		pipelineName string
		sel          selection
		limit        int
		rate         string
		maxReplays   int
		dryRun       bool
		asJSON       bool
		timeout      time.Duration
	)
	cmd := &cobra.Command{
		Use:   "quarantine --pipeline P [--stage S] [--match REGEX] [--since T] [--until T] [--limit N] [--rate N/s] [--max-replays 3] [--dry-run]",
		Short: "Send quarantined records back to the stage that failed them",
		Long: `Republish quarantined records of a pipeline to the input topic of the stage
that failed them (the millrace-stage header), once the cause is fixed: same key
and payload, the original headers without the failure headers
(millrace-error, -origin, -first-failure, -last-failure, -stack, -retry-at,
-stage, -attempt), so the stage's attempts start again, and millrace-replays
incremented. A record replayed --max-replays times already is refused; if it
fails again it stays in quarantine.

It is resumable: every record sent is recorded in the compacted topic
<pipeline>.quarantine.replayed once the broker acknowledged it, and records
found there are never sent again, whatever the filters of the run that sent
them. Running the same command twice sends nothing the second time. (A crash
between the send and the record can send one record twice.)

--since and --until select by the time a record was quarantined (its Kafka
timestamp). At the end it prints how many records were sent, per topic, and
how many were skipped and why. The exit code is 1 if any record could not be
sent.`,
		Example: `  millrace replay quarantine --pipeline orders --dry-run
  millrace replay quarantine --pipeline orders --stage price --match 'connection refused'
  millrace replay quarantine --pipeline orders --since 2026-11-20T14:00:00 --rate 100/s --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := sel.compile(); err != nil {
				return err
			}
			perSec, err := parseRate(rate)
			if err != nil {
				return err
			}
			if maxReplays < 1 {
				return usageError{"--max-replays must be at least 1"}
			}
			log, err := g.logger()
			if err != nil {
				return err
			}
			plan, pl, client, err := g.connect(cmd.Context(), pipelineName, timeout)
			if err != nil {
				return err
			}
			defer client.Close()
			if sel.stage != "" {
				if _, err := stagePlan(pl, sel.stage); err != nil {
					return err
				}
			}
			r := &quarantineReplay{pl: pl, brokers: g.clientBrokers(plan), sel: &sel, limit: limit, perSec: perSec, max: maxReplays, dry: dryRun, progressTo: g.stderr,
				sum: replaySummary{Pipeline: pl.Name, DryRun: dryRun, SentTo: map[string]int{}, Skipped: map[string]int{}, Failed: map[string]int{}}}
			runErr := r.run(cmd, client, plan, log)
			if asJSON {
				if err := writeJSON(g.stdout, r.sum); err != nil {
					return err
				}
			} else {
				r.sum.print(g.stdout)
			}
			if runErr != nil {
				return runErr
			}
			if len(r.sum.Failed) > 0 {
				return exitError{1}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&pipelineName, "pipeline", "", "pipeline whose quarantine to replay (required)")
	sel.flags(cmd, true)
	cmd.Flags().IntVarP(&limit, "limit", "n", 0, "send at most this many records (0: all)")
	cmd.Flags().StringVar(&rate, "rate", "", "send at most this many records per second, e.g. 100/s (default: no limit)")
	cmd.Flags().IntVar(&maxReplays, "max-replays", 3, "refuse records already replayed this many times")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "print what would be sent; send nothing")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the summary as JSON")
	cmd.Flags().DurationVar(&timeout, "connect-timeout", 10*time.Second, "how long to wait for the brokers")
	_ = cmd.MarkFlagRequired("pipeline")
	return cmd
}

// parseRate reads "N/s" (or "N"); "" is no limit.
func parseRate(s string) (float64, error) {
	if s == "" {
		return 0, nil
	}
	n, err := strconv.ParseFloat(strings.TrimSuffix(s, "/s"), 64)
	if err != nil || n <= 0 {
		return 0, usageError{fmt.Sprintf("--rate %q: want records per second, like 100/s", s)}
	}
	return n, nil
}

type replaySummary struct {
	Pipeline string         `json:"pipeline"`
	DryRun   bool           `json:"dry_run"`
	Sent     int            `json:"sent"`
	SentTo   map[string]int `json:"sent_to"`
	Skipped  map[string]int `json:"skipped"`
	Failed   map[string]int `json:"failed"`
}

func (s replaySummary) print(w io.Writer) {
	verb := "sent"
	if s.DryRun {
		verb = "would send"
	}
	fmt.Fprintf(w, "%s %d %s", verb, s.Sent, plural(s.Sent, "record"))
	if len(s.SentTo) > 0 {
		fmt.Fprintf(w, " (%s)", counts(s.SentTo))
	}
	fmt.Fprintln(w)
	if len(s.Skipped) > 0 {
		fmt.Fprintf(w, "skipped: %s\n", counts(s.Skipped))
	}
	if len(s.Failed) > 0 {
		fmt.Fprintf(w, "failed: %s\n", counts(s.Failed))
	}
}

func counts(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%d %s", m[k], k)
	}
	return strings.Join(parts, ", ")
}

type quarantineReplay struct {
	pl      *pipeline.PipelinePlan
	brokers []string
	sel     *selection
	limit   int
	perSec  float64
	max     int
	dry     bool
	sum     replaySummary
	// progressTo gets a progress bar if it is a terminal.
	progressTo io.Writer
}

func (r *quarantineReplay) run(cmd *cobra.Command, client sarama.Client, plan *pipeline.Plan, log *slog.Logger) error {
	ctx := cmd.Context()
	done := pipeline.ReplayedTopic(r.pl.Name)
	replayed := map[string]bool{}
	topics, err := sarama.NewClusterAdminFromClient(client)
	if err != nil {
		return fmt.Errorf("open cluster admin: %w", err)
	}
	existing, err := topics.ListTopics()
	if err != nil {
		return fmt.Errorf("list topics: %w", err)
	}
	if _, ok := existing[r.pl.Quarantine]; !ok {
		return nil // nothing was ever quarantined
	}
	if _, ok := existing[done]; !ok && !r.dry {
		err := kafkaops.EnsureTopics(client, []pipeline.Topic{{Name: done, Partitions: 1,
			Config: map[string]string{"cleanup.policy": "compact"}}}, plan.ReplicationFactor, log)
		if err != nil {
			return err
		}
		existing[done] = sarama.TopicDetail{}
	}
	if _, ok := existing[done]; ok {
		err := scanTopic(ctx, client, done, nil, func(m *sarama.ConsumerMessage) (bool, error) {
			replayed[string(m.Key)] = m.Value != nil
			return true, nil
		})
		if err != nil {
			return err
		}
	}
	var producer sarama.SyncProducer
	if !r.dry {
		// A client of its own: on the reading client, each send would
		// wait behind the consumer's long-polling fetch.
		if producer, err = sarama.NewSyncProducer(r.brokers, transport.NewProducerConfig(plan.ClientID)); err != nil {
			return fmt.Errorf("open producer: %w", err)
		}
		defer producer.Close()
	}
	var tick *time.Ticker
	if r.perSec > 0 {
		tick = time.NewTicker(time.Duration(float64(time.Second) / r.perSec))
		defer tick.Stop()
	}
	bar := newProgress(r.progressTo, recordsBetween(ctx, client, r.pl.Quarantine, nil))
	defer bar.done()
	return scanTopic(ctx, client, r.pl.Quarantine, nil, func(m *sarama.ConsumerMessage) (bool, error) {
		sent := r.sum.Sent
		more, err := r.one(ctx, m, replayed, done, producer, tick)
		bar.step(r.sum.Sent > sent)
		return more, err
	})
}

// one replays quarantined record m, or counts why not.
func (r *quarantineReplay) one(ctx context.Context, m *sarama.ConsumerMessage, replayed map[string]bool, done string,
	producer sarama.SyncProducer, tick *time.Ticker) (bool, error) {
	id := fmt.Sprintf("%d/%d", m.Partition, m.Offset)
	switch {
	case !r.sel.selects(m):
		r.sum.Skipped[skipNotSelected]++
		return true, nil
	case replayed[id]:
		r.sum.Skipped[skipReplayed]++
		return true, nil
	}
	if hasHeader(m, filters.HeaderTruncated) {
		r.sum.Failed[failTruncated]++
		return true, nil
	}
	n, _ := strconv.Atoi(header(m, filters.HeaderReplays))
	if n >= r.max {
		r.sum.Skipped[skipMaxReplays]++
		return true, nil
	}
	st, err := stagePlan(r.pl, header(m, filters.HeaderStage))
	if err != nil {
		r.sum.Failed[failNoStage]++
		return true, nil
	}
	if r.limit > 0 && r.sum.Sent >= r.limit {
		r.sum.Skipped[skipLimit]++
		return true, nil
	}
	if r.dry {
		r.sum.Sent++
		r.sum.SentTo[st.Input]++
		return true, nil
	}
	if tick != nil {
		select {
		case <-tick.C:
		case <-ctx.Done():
			return false, ctx.Err()
		}
	}
	out := &sarama.ProducerMessage{Topic: st.Input, Value: sarama.ByteEncoder(m.Value), Headers: replayHeaders(m, n+1)}
	if m.Key != nil {
		out.Key = sarama.ByteEncoder(m.Key)
	}
	if _, _, err := producer.SendMessage(out); err != nil {
		return false, fmt.Errorf("send %s/%s to %s: %w", m.Topic, id, st.Input, err)
	}
	mark := &sarama.ProducerMessage{Topic: done, Key: sarama.StringEncoder(id),
		Value: sarama.StringEncoder(fmt.Sprintf("%s/%d/%d", st.Input, out.Partition, out.Offset))}
	if _, _, err := producer.SendMessage(mark); err != nil {
		return false, fmt.Errorf("record %s/%s as replayed (it was sent to %s): %w", m.Topic, id, st.Input, err)
	}
	r.sum.Sent++
	r.sum.SentTo[st.Input]++
	return true, nil
}

// replayHeaders are a quarantined record's headers as it goes back to its
// stage: without the failure headers, the stage and the attempt count,
// with a new message id and millrace-replays set to replays.
func replayHeaders(m *sarama.ConsumerMessage, replays int) []sarama.RecordHeader {
	drop := map[string]bool{filters.HeaderAttempt: true, filters.HeaderStage: true, filters.HeaderReplays: true,
		"_watermill_message_uuid": true}
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
		sarama.RecordHeader{Key: []byte("_watermill_message_uuid"), Value: []byte(uuid.NewString())})
}
