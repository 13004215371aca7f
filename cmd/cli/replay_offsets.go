package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/millrace/millrace/kafkaops"
)

// offsetsOptions are the reset replay offsets makes, and how it prints.
type offsetsOptions struct {
	kafkaops.ResetOptions
	pipeline, stage, stageID string
	json                     bool
}

// resetFlags are the flags of replay offsets that say where to move.
type resetFlags struct {
	toTime               string
	toEarliest, toLatest bool
	toOffset, shiftBy    int64
}

// spec returns the one reset the flags ask for; changed says whether a
// flag was given.
func (f *resetFlags) spec(changed func(string) bool) (kafkaops.ResetSpec, error) {
	var specs []kafkaops.ResetSpec
	if changed("to-time") {
		t, err := parseTime("to-time", f.toTime)
		if err != nil {
			return kafkaops.ResetSpec{}, err
		}
		specs = append(specs, kafkaops.ResetSpec{Kind: kafkaops.ToTime, Time: t})
	}
	if f.toEarliest {
		specs = append(specs, kafkaops.ResetSpec{Kind: kafkaops.ToEarliest})
	}
	if f.toLatest {
		specs = append(specs, kafkaops.ResetSpec{Kind: kafkaops.ToLatest})
	}
	if changed("to-offset") {
		specs = append(specs, kafkaops.ResetSpec{Kind: kafkaops.ToOffset, Offset: f.toOffset})
	}
	if changed("shift-by") {
		specs = append(specs, kafkaops.ResetSpec{Kind: kafkaops.ShiftBy, Shift: f.shiftBy})
	}
	if len(specs) != 1 {
		return kafkaops.ResetSpec{}, usagef("give exactly one of --to-time, --to-earliest, --to-latest, --to-offset, --shift-by")
	}
	return specs[0], nil
}

const replayOffsetsHelp = `Move the committed offsets of a stage's consumer group (millrace.<pipeline>.<stage>)
on its input topics, so that the stage reprocesses (or skips) records when it
starts again. It has the semantics of Kafka's
kafka-consumer-groups --reset-offsets:

  --to-time T     the first record with a timestamp at or after T; where no
                  record is that recent, the log end. T is RFC 3339
                  (2026-11-20T14:00:00Z, …+01:00), or without a zone, in
                  UTC: 2026-11-20T14:00:00[.000], or a date, 2026-11-20.
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
members the command refuses (exit 1), with or without --execute.`

// offsetsFlags are the flags of `millrace replay offsets`.
type offsetsFlags struct {
	g                       *globals
	pipelineName, stageName string
	rf                      resetFlags
	execute, asJSON         bool
	cf                      clusterFlags
	changed                 func(flag string) bool
}

func newReplayOffsetsCmd(g *globals) *cobra.Command {
	f := &offsetsFlags{g: g}
	cmd := &cobra.Command{
		Use:   "offsets --pipeline P --stage S (--to-time T | --to-earliest | --to-latest | --to-offset N | --shift-by N) [--execute]",
		Short: "Rewind or fast-forward a stopped stage's consumer group",
		Long:  replayOffsetsHelp,
		Example: `  millrace replay offsets --pipeline orders --stage price --to-time 2026-11-20T14:00:00
  millrace replay offsets --pipeline orders --stage price --to-time 2026-11-20T14:00:00 --execute
  millrace replay offsets --pipeline orders --stage confirm --shift-by -100 --json`,
		Args: noArgs,
	}
	f.changed = cmd.Flags().Changed
	command(g, cmd, f.parse, f.do)
	fl := cmd.Flags()
	fl.StringVar(&f.pipelineName, "pipeline", "", "pipeline of the stage (required)")
	fl.StringVar(&f.stageName, "stage", "", "stage whose consumer group is moved (required)")
	fl.StringVar(&f.rf.toTime, "to-time", "", "move to the first record at or after this time: "+timeForms)
	fl.BoolVar(&f.rf.toEarliest, "to-earliest", false, "move to the oldest record")
	fl.BoolVar(&f.rf.toLatest, "to-latest", false, "move to the log end")
	fl.Int64Var(&f.rf.toOffset, "to-offset", 0, "move to this offset (clamped to the log bounds)")
	fl.Int64Var(&f.rf.shiftBy, "shift-by", 0, "move by this many records (negative: back), clamped to the log bounds")
	fl.BoolVar(&f.execute, "execute", false, "apply the plan (default: only print it)")
	fl.BoolVar(&f.asJSON, "json", false, "print the plan as JSON")
	f.cf.add(cmd)
	require(cmd, "pipeline", "stage")
	return cmd
}

func (f *offsetsFlags) parse([]string) (offsetsOptions, error) {
	spec, err := f.rf.spec(f.changed)
	if err != nil {
		return offsetsOptions{}, err
	}
	plan, pl, err := f.g.loadPipeline(f.pipelineName)
	if err != nil {
		return offsetsOptions{}, err
	}
	st, err := stagePlan(pl, f.stageName)
	if err != nil {
		return offsetsOptions{}, err
	}
	cluster, err := f.cf.cluster(f.g, plan)
	if err != nil {
		return offsetsOptions{}, err
	}
	o := offsetsOptions{ResetOptions: kafkaops.ResetOptions{Cluster: cluster, Group: st.Group, Spec: spec, Execute: f.execute},
		pipeline: pl.Name, stage: st.Name, stageID: st.ID(), json: f.asJSON}
	for _, in := range st.Inputs {
		o.Topics = append(o.Topics, in.Topic)
	}
	return o, nil
}

func (f *offsetsFlags) do(ctx context.Context, o offsetsOptions) error {
	resets, err := kafkaops.ResetOffsets(ctx, o.ResetOptions)
	if errors.Is(err, kafkaops.ErrGroupActive) {
		return fmt.Errorf("stage %s is running (%v): stop every `millrace run` process that runs it, then try again", o.stageID, err)
	}
	if err != nil {
		return err
	}
	out := newOffsetsReport(o, resets)
	if o.json {
		return writeJSON(f.g.stdout, out)
	}
	out.print(f.g.stdout)
	return nil
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

func newOffsetsReport(o offsetsOptions, resets []kafkaops.OffsetReset) offsetsReport {
	out := offsetsReport{Pipeline: o.pipeline, Stage: o.stage, Group: o.Group, Reset: o.Spec.String(),
		Executed: o.Execute, Partitions: []offsetsRow{}}
	for _, r := range resets {
		out.Partitions = append(out.Partitions, offsetsRow{OffsetReset: r, Reprocess: r.Reprocess(), Skip: r.Skip()})
		out.Reprocess += r.Reprocess()
		out.Skip += r.Skip()
	}
	return out
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
