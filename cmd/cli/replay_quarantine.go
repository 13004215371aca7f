package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/millrace/millrace/kafkaops"
)

// replayQuarantineOptions are what replay quarantine sends, and how it
// prints.
type replayQuarantineOptions struct {
	kafkaops.ReplayQuarantineOptions
	json bool
}

const replayQuarantineHelp = `Republish quarantined records of a pipeline to the input topic of the stage
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
timestamp): each is a duration ago (1h, 30m) or a time: RFC 3339, or without
a zone, in UTC (2026-11-20T14:00:00, or a date, 2026-11-20). At the end it
prints how many records were sent, per topic, and how many were skipped and
why. The exit code is 1 if any record could not be sent.`

// replayQuarantineFlags are the flags of `millrace replay quarantine`.
type replayQuarantineFlags struct {
	g            *globals
	pipelineName string
	sel          selectionFlags
	limit        int
	rate         string
	maxReplays   int
	dryRun       bool
	asJSON       bool
	cf           clusterFlags
}

func newReplayQuarantineCmd(g *globals) *cobra.Command {
	f := &replayQuarantineFlags{g: g}
	cmd := &cobra.Command{
		Use:   "quarantine --pipeline P [--stage S] [--match REGEX] [--since T] [--until T] [--limit N] [--rate N/s] [--max-replays 3] [--dry-run]",
		Short: "Send quarantined records back to the stage that failed them",
		Long:  replayQuarantineHelp,
		Example: `  millrace replay quarantine --pipeline orders --dry-run
  millrace replay quarantine --pipeline orders --stage price --match 'connection refused'
  millrace replay quarantine --pipeline orders --since 2026-11-20T14:00:00 --rate 100/s --json`,
		Args: noArgs,
	}
	command(g, cmd, f.parse, f.do)
	fl := cmd.Flags()
	fl.StringVar(&f.pipelineName, "pipeline", "", "pipeline whose quarantine to replay (required)")
	f.sel.add(cmd, true)
	fl.IntVarP(&f.limit, "limit", "n", 0, "send at most this many records (0: all)")
	fl.StringVar(&f.rate, "rate", "", "send at most this many records per second, e.g. 100/s (default: no limit)")
	fl.IntVar(&f.maxReplays, "max-replays", kafkaops.DefaultMaxReplays, "refuse records already replayed this many times")
	fl.BoolVar(&f.dryRun, "dry-run", false, "print what would be sent; send nothing")
	fl.BoolVar(&f.asJSON, "json", false, "print the summary as JSON")
	f.cf.add(cmd)
	require(cmd, "pipeline")
	return cmd
}

func (f *replayQuarantineFlags) parse([]string) (replayQuarantineOptions, error) {
	perSec, err := parseRate(f.rate)
	if err != nil {
		return replayQuarantineOptions{}, err
	}
	if f.maxReplays < 1 {
		return replayQuarantineOptions{}, usagef("--max-replays %d: want 1 or more", f.maxReplays)
	}
	if f.limit < 0 {
		return replayQuarantineOptions{}, usagef("--limit %d: want 0 (all) or more", f.limit)
	}
	plan, pl, err := f.g.loadPipeline(f.pipelineName)
	if err != nil {
		return replayQuarantineOptions{}, err
	}
	sel, err := f.sel.selection(pl)
	if err != nil {
		return replayQuarantineOptions{}, err
	}
	cluster, err := f.cf.cluster(f.g, plan)
	if err != nil {
		return replayQuarantineOptions{}, err
	}
	return replayQuarantineOptions{ReplayQuarantineOptions: kafkaops.ReplayQuarantineOptions{Cluster: cluster, Pipeline: pl,
		ReplicationFactor: plan.ReplicationFactor, Select: sel, Limit: f.limit, Rate: perSec, MaxReplays: f.maxReplays,
		DryRun: f.dryRun, Log: f.g.log}, json: f.asJSON}, nil
}

func (f *replayQuarantineFlags) do(ctx context.Context, o replayQuarantineOptions) error {
	bar := newProgress(f.g.stderr)
	o.Progress = bar.report()
	res, runErr := kafkaops.ReplayQuarantine(ctx, o.ReplayQuarantineOptions)
	bar.done()
	if errors.Is(runErr, kafkaops.ErrNotStarted) {
		return runErr
	}
	sum := replaySummary{Pipeline: o.Pipeline.Name, DryRun: o.DryRun, Sent: res.Sent, SentTo: res.SentTo,
		Skipped: res.Skipped, Failed: res.Failed}
	if o.json {
		if err := writeJSON(f.g.stdout, sum); err != nil {
			return err
		}
	} else {
		sum.print(f.g.stdout)
	}
	if runErr != nil {
		return runErr
	}
	if len(sum.Failed) > 0 {
		return errPrinted
	}
	return nil
}

// replaySummary is what replay quarantine prints.
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

// counts writes m as "n key, n key" sorted by key.
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
