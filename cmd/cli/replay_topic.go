package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/millrace/millrace/kafkaops"
)

// copyOptions are what replay topic copies, and how it prints.
type copyOptions struct {
	kafkaops.CopyOptions
	json bool
}

const replayTopicHelp = `Copy the records of topic --from whose timestamps lie in [--since, --until)
into topic --to: same key, payload and headers, partitioned by key the way
millrace and Java clients partition (murmur2). The copies get new timestamps
(the time they are written).

Each partition of --from is read from its first record at or after --since
(the start of the log without it) up to its end when the command started;
records with a timestamp at or after --until are left out. Each is a
duration ago (1h, 30m) or a time: RFC 3339, or without a zone, in UTC
(2026-11-20T14:00:00, or a date, 2026-11-20). --to must exist and differ from
--from (a topic copied into itself would grow for ever). At the end it
prints how many records were copied per partition; --dry-run only counts
them. The exit code is 1 if any record could not be copied.`

// replayTopicFlags are the flags of `millrace replay topic`.
type replayTopicFlags struct {
	g            *globals
	from, to     string
	since, until string
	rate         string
	dryRun       bool
	asJSON       bool
	cf           clusterFlags
}

func newReplayTopicCmd(g *globals) *cobra.Command {
	f := &replayTopicFlags{g: g}
	cmd := &cobra.Command{
		Use:   "topic --from T1 --to T2 [--since T] [--until T] [--rate N/s] [--dry-run]",
		Short: "Copy a time range of one topic into another (re-feed an input after an outage)",
		Long:  replayTopicHelp,
		Example: `  # resize again the images uploaded from 14:00 to 15:30 (UTC), say once thumbnail.sh is fixed:
  millrace replay topic --from images.uploaded --to thumbnails.resize --since 2026-11-20T14:00:00 --until 2026-11-20T15:30:00 --dry-run
  millrace replay topic --from images.uploaded --to thumbnails.resize --since 2026-11-20T14:00:00 --until 2026-11-20T15:30:00 --rate 50/s --json`,
		Args: noArgs,
	}
	command(g, cmd, f.parse, f.do)
	fl := cmd.Flags()
	fl.StringVar(&f.from, "from", "", "topic to copy from (required)")
	fl.StringVar(&f.to, "to", "", "topic to copy into (required; must exist)")
	fl.StringVar(&f.since, "since", "", "copy records with a timestamp at or after this time (default: from the start): "+agoForms)
	fl.StringVar(&f.until, "until", "", "copy records with a timestamp before this time (default: up to the end): "+agoForms)
	fl.StringVar(&f.rate, "rate", "", "copy at most this many records per second, e.g. 500/s (default: no limit)")
	fl.BoolVar(&f.dryRun, "dry-run", false, "count what would be copied; copy nothing")
	fl.BoolVar(&f.asJSON, "json", false, "print the summary as JSON")
	f.cf.add(cmd)
	require(cmd, "from", "to")
	return cmd
}

func (f *replayTopicFlags) parse([]string) (copyOptions, error) {
	if f.from == f.to {
		return copyOptions{}, usagef("--from and --to are the same topic %q: a topic copied into itself grows for ever", f.from)
	}
	lo, hi, err := parseRange(f.since, f.until, time.Now())
	if err != nil {
		return copyOptions{}, err
	}
	perSec, err := parseRate(f.rate)
	if err != nil {
		return copyOptions{}, err
	}
	plan, err := f.g.loadOptional()
	if err != nil {
		return copyOptions{}, err
	}
	cluster, err := f.cf.cluster(f.g, plan)
	if err != nil {
		return copyOptions{}, err
	}
	return copyOptions{CopyOptions: kafkaops.CopyOptions{Cluster: cluster, From: f.from, To: f.to, Since: lo, Until: hi,
		Rate: perSec, DryRun: f.dryRun}, json: f.asJSON}, nil
}

func (f *replayTopicFlags) do(ctx context.Context, o copyOptions) error {
	bar := newProgress(f.g.stderr)
	o.Progress = bar.report()
	res, runErr := kafkaops.CopyRange(ctx, o.CopyOptions)
	bar.done()
	if errors.Is(runErr, kafkaops.ErrNotStarted) {
		return runErr
	}
	sum := copySummary{From: o.From, To: o.To, DryRun: o.DryRun, Copied: res.Copied, PerPartition: res.PerPartition,
		Skipped: res.SkippedAfterUntil}
	if runErr != nil {
		sum.Error = runErr.Error()
	}
	if o.json {
		if err := writeJSON(f.g.stdout, sum); err != nil {
			return err
		}
	} else {
		sum.print(f.g.stdout)
	}
	return runErr
}

// copySummary is what replay topic prints.
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
