package cli

import (
	"encoding/json"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/millrace/millrace/pipeline"
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
		Args: noArgs,
		RunE: func(*cobra.Command, []string) error {
			return usagef("replay needs a subcommand: offsets, quarantine or topic")
		},
	}
	cmd.AddCommand(newReplayOffsetsCmd(g), newReplayQuarantineCmd(g), newReplayTopicCmd(g))
	return cmd
}

// timeLayouts are the forms a time flag takes. Without a zone, a time is
// UTC (Kafka's kafka-consumer-groups --to-datetime reads it in the JVM's
// zone instead).
var timeLayouts = []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02 15:04:05", "2006-01-02"}

// timeForms are the forms of timeLayouts, for the help of time flags.
const timeForms = "RFC 3339 (2026-11-20T14:00:00+01:00), or UTC without a zone (2026-11-20T14:00:00, 2026-11-20 14:00:00, 2026-11-20)"

// agoForms are the forms of a time flag that also takes a duration ago
// (parseAgo), for its help.
const agoForms = "a duration ago (1h) or a time: " + timeForms

// parseTime reads a time flag: RFC 3339 ("2026-11-20T14:00:00Z",
// "…+01:00"), or "2006-01-02T15:04:05[.000]" or "2006-01-02" in UTC.
func parseTime(flag, s string) (time.Time, error) {
	for _, l := range timeLayouts {
		if t, err := time.ParseInLocation(l, s, time.UTC); err == nil {
			return t, nil
		}
	}
	return time.Time{}, usagef("--%s %q: want a time like 2026-11-20T14:00:00 (UTC), "+
		"2026-11-20T14:00:00.000+01:00 or 2026-11-20", flag, s)
}

// parseAgo reads a time flag that also takes a duration ago (1h: an hour
// before now), or a time (see parseTime).
func parseAgo(flag, s string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil {
		if d <= 0 {
			return time.Time{}, usagef("--%s %s: want a duration ago more than 0, like 1h", flag, s)
		}
		return now.Add(-d), nil
	}
	t, err := parseTime(flag, s)
	if err != nil {
		return t, usagef("--%s %q: want a duration ago, like 1h or 30m, or a time like 2026-11-20T14:00:00 (UTC), "+
			"2026-11-20T14:00:00+01:00 or 2026-11-20", flag, s)
	}
	return t, nil
}

// parseRange reads --since and --until, each a duration before now or a
// time (see parseAgo; either may be empty: unbounded); --until must be
// after --since.
func parseRange(since, until string, now time.Time) (from, to time.Time, err error) {
	if since != "" {
		if from, err = parseAgo("since", since, now); err != nil {
			return from, to, err
		}
	}
	if until != "" {
		if to, err = parseAgo("until", until, now); err != nil {
			return from, to, err
		}
		if !from.IsZero() && !to.After(from) {
			return from, to, usagef("--until must be after --since")
		}
	}
	return from, to, nil
}

// parseRate reads --rate "N/s" (or "N"); "" is no limit (0).
func parseRate(s string) (float64, error) {
	if s == "" {
		return 0, nil
	}
	n, err := strconv.ParseFloat(strings.TrimSuffix(s, "/s"), 64)
	if err != nil || n <= 0 {
		return 0, usagef("--rate %q: want records per second, like 100/s", s)
	}
	return n, nil
}

// stagePlan finds the stage --stage names in pipeline pl.
func stagePlan(pl *pipeline.PipelinePlan, name string) (*pipeline.StagePlan, error) {
	var names []string
	for i := range pl.Stages {
		if pl.Stages[i].Name == name {
			return &pl.Stages[i], nil
		}
		names = append(names, pl.Stages[i].Name)
	}
	return nil, usagef("--stage: pipeline %q has no stage %q (stages: %s)", pl.Name, name, strings.Join(names, ", "))
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
