package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/IBM/sarama"
	"github.com/spf13/cobra"

	"github.com/millrace/millrace/kafkaops"
	"github.com/millrace/millrace/pipeline"
	"github.com/millrace/millrace/transport"
)

func newReplayCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "replay",
		Short: "Recover from failures: rewind a stage, replay quarantine, re-feed a topic",
		Long: `Replay records after a bug or an outage is fixed.

  replay offsets     rewind (or fast-forward) a stopped stage's consumer group
  replay quarantine  send quarantined records back to the stage that failed them
  replay topic       copy a time range of one topic into another

Each prints what it would do with --dry-run (replay offsets: without
--execute), prints JSON with --json, and exits non-zero on any failure.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return usageError{"replay needs a subcommand: offsets, quarantine or topic (see millrace replay --help)"}
		},
	}
	cmd.AddCommand(newReplayOffsetsCmd(g), newReplayQuarantineCmd(g), newReplayTopicCmd(g))
	return cmd
}

// timeLayouts are the forms a time flag takes. Without a zone, a time is
// UTC (as in kafka-consumer-groups --to-datetime).
var timeLayouts = []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02 15:04:05", "2006-01-02"}

// parseTime reads a time flag: RFC 3339 ("2026-11-20T14:00:00Z",
// "…+01:00"), or "2006-01-02T15:04:05[.000]" or "2006-01-02" in UTC.
func parseTime(flag, s string) (time.Time, error) {
	for _, l := range timeLayouts {
		if t, err := time.ParseInLocation(l, s, time.UTC); err == nil {
			return t, nil
		}
	}
	return time.Time{}, usageError{fmt.Sprintf("--%s %q: want a time like 2026-11-20T14:00:00 (UTC), "+
		"2026-11-20T14:00:00.000+01:00 or 2026-11-20", flag, s)}
}

// stagePlan finds stage name of pipeline pl.
func stagePlan(pl *pipeline.PipelinePlan, name string) (*pipeline.StagePlan, error) {
	var names []string
	for i := range pl.Stages {
		if pl.Stages[i].Name == name {
			return &pl.Stages[i], nil
		}
		names = append(names, pl.Stages[i].Name)
	}
	return nil, usageError{fmt.Sprintf("pipeline %q has no stage %q (stages: %s)", pl.Name, name, strings.Join(names, ", "))}
}

// connect loads the pipelines file, finds the pipeline and connects.
func (g *globals) connect(ctx context.Context, pipelineName string, timeout time.Duration) (*pipeline.Plan, *pipeline.PipelinePlan, sarama.Client, error) {
	f, err := g.load()
	if err != nil {
		return nil, nil, nil, err
	}
	plan := f.Plan()
	var pl *pipeline.PipelinePlan
	if pipelineName != "" {
		if pl, err = plan.Pipeline(pipelineName); err != nil {
			return nil, nil, nil, usageError{err.Error()}
		}
	}
	client, err := transport.ConnectTimeout(ctx, g.clientBrokers(plan), transport.NewSaramaConfig(plan.ClientID), timeout)
	if err != nil {
		return nil, nil, nil, err
	}
	return plan, pl, client, nil
}

func newReplayOffsetsCmd(g *globals) *cobra.Command {
	var (
		pipelineName, stageName, toTime string
		toEarliest, toLatest            bool
		toOffset, shiftBy               int64
		execute, asJSON                 bool
		timeout                         time.Duration
	)
	cmd := &cobra.Command{
		Use:   "offsets --pipeline P --stage S (--to-time T | --to-earliest | --to-latest | --to-offset N | --shift-by N) [--execute]",
		Short: "Rewind or fast-forward a stopped stage's consumer group",
		Long: `Move the committed offsets of a stage's consumer group (millrace.<pipeline>.<stage>)
on its input topics, so that the stage reprocesses (or skips) records when it
starts again. It has the semantics of Kafka's
kafka-consumer-groups --reset-offsets:

  --to-time T     the first record with a timestamp at or after T; where no
                  record is that recent, the log end. T is RFC 3339
                  (2026-11-20T14:00:00Z, …+01:00) or 2026-11-20T14:00:00[.000],
                  which is UTC.
  --to-earliest   the oldest record still in the log
  --to-latest     the log end: skip everything not yet processed
  --to-offset N   offset N, clamped to the log bounds
  --shift-by N    the committed offset plus N (negative: back), clamped to the
                  log bounds; partitions without a committed offset are an
                  error, as in Kafka's tool

Only the stage's input topics are moved (for the first stage, the pipeline's
input and priority topics), never its retry tier topics: records waiting in a
retry tier are still retried.

Without --execute it only prints the plan: per partition the current offset
(the committed one; with none, the log start, where the stage would start),
the target and how many records the stage will process again. --execute
commits the targets. The stage must be stopped: while its consumer group has
members the command refuses (exit 1), with or without --execute.`,
		Example: `  millrace replay offsets --pipeline orders --stage price --to-time 2026-11-20T14:00:00
  millrace replay offsets --pipeline orders --stage price --to-time 2026-11-20T14:00:00 --execute
  millrace replay offsets --pipeline orders --stage confirm --shift-by -100 --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var specs []kafkaops.ResetSpec
			fl := cmd.Flags()
			if fl.Changed("to-time") {
				t, err := parseTime("to-time", toTime)
				if err != nil {
					return err
				}
				specs = append(specs, kafkaops.ResetSpec{Kind: kafkaops.ToTime, Time: t})
			}
			if toEarliest {
				specs = append(specs, kafkaops.ResetSpec{Kind: kafkaops.ToEarliest})
			}
			if toLatest {
				specs = append(specs, kafkaops.ResetSpec{Kind: kafkaops.ToLatest})
			}
			if fl.Changed("to-offset") {
				specs = append(specs, kafkaops.ResetSpec{Kind: kafkaops.ToOffset, Offset: toOffset})
			}
			if fl.Changed("shift-by") {
				specs = append(specs, kafkaops.ResetSpec{Kind: kafkaops.ShiftBy, Shift: shiftBy})
			}
			if len(specs) != 1 {
				return usageError{"give exactly one of --to-time, --to-earliest, --to-latest, --to-offset, --shift-by"}
			}
			_, pl, client, err := g.connect(cmd.Context(), pipelineName, timeout)
			if err != nil {
				return err
			}
			defer client.Close()
			st, err := stagePlan(pl, stageName)
			if err != nil {
				return err
			}
			if err := kafkaops.RequireInactive(client, st.Group); err != nil {
				if errors.Is(err, kafkaops.ErrGroupActive) {
					return fmt.Errorf("stage %s is running (%v): stop every `millrace run` process that runs it, then try again", st.ID(), err)
				}
				return err
			}
			var topics []string
			for _, in := range st.Inputs {
				topics = append(topics, in.Topic)
			}
			resets, err := kafkaops.PlanOffsetReset(client, st.Group, topics, specs[0])
			if err != nil {
				return err
			}
			if execute {
				// Check again right before committing: a stage may have
				// started meanwhile (the broker would reject the commit too).
				if err := kafkaops.RequireInactive(client, st.Group); err != nil {
					return err
				}
				if err := kafkaops.ApplyOffsetReset(client, st.Group, resets); err != nil {
					return err
				}
			}
			out := offsetsReport{Pipeline: pl.Name, Stage: st.Name, Group: st.Group, Reset: specs[0].String(),
				Executed: execute, Partitions: []offsetsRow{}}
			for _, r := range resets {
				out.Partitions = append(out.Partitions, offsetsRow{OffsetReset: r, Reprocess: r.Reprocess(), Skip: r.Skip()})
				out.Reprocess += r.Reprocess()
				out.Skip += r.Skip()
			}
			if asJSON {
				return writeJSON(g.stdout, out)
			}
			out.print(g.stdout)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&pipelineName, "pipeline", "", "pipeline of the stage (required)")
	f.StringVar(&stageName, "stage", "", "stage whose consumer group is moved (required)")
	f.StringVar(&toTime, "to-time", "", "move to the first record at or after this time (UTC unless it has a zone)")
	f.BoolVar(&toEarliest, "to-earliest", false, "move to the oldest record")
	f.BoolVar(&toLatest, "to-latest", false, "move to the log end")
	f.Int64Var(&toOffset, "to-offset", 0, "move to this offset (clamped to the log bounds)")
	f.Int64Var(&shiftBy, "shift-by", 0, "move by this many records (negative: back), clamped to the log bounds")
	f.BoolVar(&execute, "execute", false, "apply the plan (default: only print it)")
	f.BoolVar(&asJSON, "json", false, "print the plan as JSON")
	f.DurationVar(&timeout, "connect-timeout", 10*time.Second, "how long to wait for the brokers")
	_ = cmd.MarkFlagRequired("pipeline")
	_ = cmd.MarkFlagRequired("stage")
	return cmd
}

type offsetsRow struct {
	kafkaops.OffsetReset
	Reprocess int64 `json:"reprocess"`
	Skip      int64 `json:"skip"`
}

type offsetsReport struct {
	Pipeline   string       `json:"pipeline"`
	Stage      string       `json:"stage"`
	Group      string       `json:"group"`
	Reset      string       `json:"reset"`
	Executed   bool         `json:"executed"`
	Partitions []offsetsRow `json:"partitions"`
	Reprocess  int64        `json:"reprocess"`
	Skip       int64        `json:"skip"`
}

func (r offsetsReport) print(w io.Writer) {
	fmt.Fprintf(w, "stage %s/%s, consumer group %s, %s:\n", r.Pipeline, r.Stage, r.Group, r.Reset)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TOPIC\tPARTITION\tCURRENT\tTARGET\tREPROCESS\tSKIP")
	uncommitted := false
	for _, p := range r.Partitions {
		cur := fmt.Sprint(p.Current)
		if !p.Committed {
			cur += "*"
			uncommitted = true
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%d\t%d\n", p.Topic, p.Partition, cur, p.Target, p.Reprocess, p.Skip)
	}
	tw.Flush()
	if uncommitted {
		fmt.Fprintln(w, "* no committed offset: the stage would start at the log start")
	}
	fmt.Fprintf(w, "%d %s to reprocess, %d to skip", r.Reprocess, plural(int(r.Reprocess), "record"), r.Skip)
	if r.Executed {
		fmt.Fprintln(w, "; offsets committed")
	} else {
		fmt.Fprintln(w, " (dry run: nothing changed; add --execute to apply)")
	}
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
