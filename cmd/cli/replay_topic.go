package cli

import (
	"fmt"
	"io"
	"time"

	"github.com/IBM/sarama"
	"github.com/millrace/millrace/transport"
	"github.com/spf13/cobra"
)

func newReplayTopicCmd(g *globals) *cobra.Command {
	var (
		from, to     string
		since, until string
		rate         string
		dryRun       bool
		asJSON       bool
		timeout      time.Duration
	)
	cmd := &cobra.Command{
		Use:   "topic --from T1 --to T2 [--since T] [--until T] [--rate N/s] [--dry-run]",
		Short: "Copy a time range of one topic into another (re-feed an input after an outage)",
		Long: `Copy the records of topic --from whose timestamps lie in [--since, --until)
into topic --to: same key, payload and headers, partitioned by key the way
millrace and Java clients partition (murmur2). The copies get new timestamps
(the time they are written).

Each partition of --from is read from its first record at or after --since
(the start of the log without it) up to its end when the command started;
records with a timestamp at or after --until are left out. Times without a
zone are UTC. --to must exist and differ from --from (a topic copied into
itself would grow for ever). At the end it prints how many records were
copied per partition; --dry-run only counts them. The exit code is 1 if any
record could not be copied.`,
		Example: `  millrace replay topic --from orders.dlq --to orders --since 2026-11-20T14:00:00 --until 2026-11-20T15:30:00 --dry-run
  millrace replay topic --from orders.backup --to orders --rate 500/s --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if from == to {
				return usageError{fmt.Sprintf("--from and --to are the same topic %q: a topic copied into itself grows for ever", from)}
			}
			var lo, hi time.Time
			var err error
			if since != "" {
				if lo, err = parseTime("since", since); err != nil {
					return err
				}
			}
			if until != "" {
				if hi, err = parseTime("until", until); err != nil {
					return err
				}
				if !lo.IsZero() && !hi.After(lo) {
					return usageError{"--until must be after --since"}
				}
			}
			perSec, err := parseRate(rate)
			if err != nil {
				return err
			}
			brokers := g.clientBrokers(nil)
			clientID := ""
			if f, err := g.loadQuiet(); err == nil {
				plan := f.Plan()
				brokers, clientID = g.clientBrokers(plan), plan.ClientID
			}
			client, err := transport.ConnectTimeout(cmd.Context(), brokers, transport.NewSaramaConfig(clientID), timeout)
			if err != nil {
				return err
			}
			defer client.Close()
			for _, t := range []string{from, to} {
				if _, err := client.Partitions(t); err != nil {
					return fmt.Errorf("topic %s: %w", t, err)
				}
			}
			c := topicCopy{from: from, to: to, since: lo, until: hi, perSec: perSec, dry: dryRun, progressTo: g.stderr,
				sum: copySummary{From: from, To: to, DryRun: dryRun, PerPartition: map[int32]int{}}}
			if !dryRun {
				producer, err := sarama.NewSyncProducer(brokers, transport.NewProducerConfig(clientID))
				if err != nil {
					return fmt.Errorf("open producer: %w", err)
				}
				defer producer.Close()
				c.producer = producer
			}
			runErr := c.run(cmd, client)
			if asJSON {
				if err := writeJSON(g.stdout, c.sum); err != nil {
					return err
				}
			} else {
				c.sum.print(g.stdout)
			}
			return runErr
		},
	}
	f := cmd.Flags()
	f.StringVar(&from, "from", "", "topic to copy from (required)")
	f.StringVar(&to, "to", "", "topic to copy into (required; must exist)")
	f.StringVar(&since, "since", "", "copy records with a timestamp at or after this time (default: from the start)")
	f.StringVar(&until, "until", "", "copy records with a timestamp before this time (default: up to the end)")
	f.StringVar(&rate, "rate", "", "copy at most this many records per second, e.g. 500/s (default: no limit)")
	f.BoolVar(&dryRun, "dry-run", false, "count what would be copied; copy nothing")
	f.BoolVar(&asJSON, "json", false, "print the summary as JSON")
	f.DurationVar(&timeout, "connect-timeout", 10*time.Second, "how long to wait for the brokers")
	_ = cmd.MarkFlagRequired("from")
	_ = cmd.MarkFlagRequired("to")
	return cmd
}

type copySummary struct {
	From         string        `json:"from"`
	To           string        `json:"to"`
	DryRun       bool          `json:"dry_run"`
	Copied       int           `json:"copied"`
	PerPartition map[int32]int `json:"per_partition"`
	Skipped      int           `json:"skipped_after_until"`
	Error        string        `json:"error,omitempty"`
}

func (s copySummary) print(w io.Writer) {
	verb := "copied"
	if s.DryRun {
		verb = "would copy"
	}
	fmt.Fprintf(w, "%s %d %s from %s to %s", verb, s.Copied, plural(s.Copied, "record"), s.From, s.To)
	if s.Skipped > 0 {
		fmt.Fprintf(w, " (%d later than --until left out)", s.Skipped)
	}
	fmt.Fprintln(w)
	if s.Error != "" {
		fmt.Fprintf(w, "stopped by an error: %s\n", s.Error)
	}
}

type topicCopy struct {
	from, to     string
	since, until time.Time
	perSec       float64
	dry          bool
	producer     sarama.SyncProducer
	batch        []*sarama.ProducerMessage
	sum          copySummary
	progressTo   io.Writer // gets a progress bar if it is a terminal
}

// copyBatch is how many records go to the broker in one request.
const copyBatch = 500

// flush sends the batch and counts it as copied.
func (c *topicCopy) flush() error {
	if len(c.batch) == 0 {
		return nil
	}
	if err := c.producer.SendMessages(c.batch); err != nil {
		return fmt.Errorf("copy to %s: %w", c.to, err)
	}
	for _, m := range c.batch {
		c.sum.Copied++
		c.sum.PerPartition[m.Metadata.(int32)]++
	}
	c.batch = c.batch[:0]
	return nil
}

func (c *topicCopy) run(cmd *cobra.Command, client sarama.Client) error {
	ctx := cmd.Context()
	parts, err := client.Partitions(c.from)
	if err != nil {
		return fmt.Errorf("topic %s: %w", c.from, err)
	}
	start := map[int32]int64{}
	if !c.since.IsZero() {
		for _, p := range parts {
			o, err := client.GetOffset(c.from, p, c.since.UnixMilli())
			if err != nil {
				return fmt.Errorf("offset of %s/%d at %s: %w", c.from, p, c.since.Format(time.RFC3339), err)
			}
			if o < 0 { // no record at or after --since
				if o, err = client.GetOffset(c.from, p, sarama.OffsetNewest); err != nil {
					return fmt.Errorf("end of %s/%d: %w", c.from, p, err)
				}
			}
			start[p] = o
		}
	}
	var tick *time.Ticker
	if c.perSec > 0 {
		tick = time.NewTicker(time.Duration(float64(time.Second) / c.perSec))
		defer tick.Stop()
	}
	bar := newProgress(c.progressTo, recordsBetween(ctx, client, c.from, start))
	defer bar.done()
	err = scanTopic(ctx, client, c.from, start, func(m *sarama.ConsumerMessage) (bool, error) {
		if !c.until.IsZero() && !m.Timestamp.Before(c.until) {
			c.sum.Skipped++
			bar.step(false)
			return true, nil
		}
		if !c.since.IsZero() && m.Timestamp.Before(c.since) {
			bar.step(false)
			return true, nil // out of timestamp order, before the range
		}
		bar.step(true)
		if !c.dry {
			if tick != nil {
				select {
				case <-tick.C:
				case <-ctx.Done():
					return false, ctx.Err()
				}
			}
			out := &sarama.ProducerMessage{Topic: c.to, Value: sarama.ByteEncoder(m.Value), Metadata: m.Partition}
			if m.Key != nil {
				out.Key = sarama.ByteEncoder(m.Key)
			}
			for _, h := range m.Headers {
				out.Headers = append(out.Headers, *h)
			}
			c.batch = append(c.batch, out)
			if len(c.batch) >= copyBatch || tick != nil {
				return true, c.flush()
			}
			return true, nil
		}
		c.sum.Copied++
		c.sum.PerPartition[m.Partition]++
		return true, nil
	})
	if err == nil && !c.dry {
		err = c.flush()
	}
	if err != nil {
		c.sum.Error = err.Error()
	}
	return err
}
