package cli

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/millrace/millrace/filters"
	"github.com/millrace/millrace/kafkaops"
	"github.com/millrace/millrace/pipeline"
)

func newQuarantineCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "quarantine",
		Short: "Inspect the records a pipeline quarantined",
		Long: `Inspect a pipeline's quarantine topic (<pipeline>.quarantine, a dead-letter
topic), where records go that failed for good, with headers saying why:
millrace-error, millrace-stage, millrace-attempt, millrace-origin,
millrace-first-failure, millrace-last-failure.

  quarantine ls    counts by stage and error, with first and last failure,
                   and how many were replayed
  quarantine show  the records with their headers

Both read outside any consumer group and change nothing. To send records
back to their stage, see millrace replay quarantine.`,
		Args: noArgs,
		RunE: func(*cobra.Command, []string) error {
			return usagef("quarantine needs a subcommand: ls or show")
		},
	}
	cmd.AddCommand(newQuarantineLsCmd(g), newQuarantineShowCmd(g))
	return cmd
}

// selectionFlags are the flags that pick quarantined records.
type selectionFlags struct {
	stage, match, since, until string
}

func (s *selectionFlags) add(cmd *cobra.Command, times bool) {
	f := cmd.Flags()
	f.StringVar(&s.stage, "stage", "", "only records quarantined by this stage")
	f.StringVar(&s.match, "match", "", "only records whose error ("+filters.HeaderError+") matches this regular expression")
	if times {
		f.StringVar(&s.since, "since", "", "only records quarantined at or after this time: "+agoForms)
		f.StringVar(&s.until, "until", "", "only records quarantined before this time: "+agoForms)
	}
}

// selection returns the selection the flags ask for. With pl, --stage
// must name one of its stages; without, it may name a stage no longer in
// the file (its records stay in quarantine).
func (s *selectionFlags) selection(pl *pipeline.PipelinePlan) (kafkaops.QuarantineSelection, error) {
	var sel kafkaops.QuarantineSelection
	var err error
	if s.stage != "" && pl != nil {
		if _, err := stagePlan(pl, s.stage); err != nil {
			return sel, err
		}
	}
	sel.Stage = s.stage
	if s.match != "" {
		if sel.Error, err = regexp.Compile(s.match); err != nil {
			return sel, usagef("--match %q: %v", s.match, err)
		}
	}
	if sel.Since, sel.Until, err = parseRange(s.since, s.until, time.Now()); err != nil {
		return sel, err
	}
	return sel, nil
}

// quarantineOptions say whose quarantine to read and how to print it.
type quarantineOptions struct {
	kafkaops.QuarantineOptions
	pipeline string
	limit    int
	json     bool
}

// quarantineFlags are the flags quarantine ls and show share.
type quarantineFlags struct {
	pipeline string
	sel      selectionFlags
	limit    int
	json     bool
	cf       clusterFlags
}

func (q *quarantineFlags) options(g *globals) (quarantineOptions, error) {
	if q.limit < 0 {
		return quarantineOptions{}, usagef("--limit %d: want 0 (all) or more", q.limit)
	}
	plan, pl, err := g.loadPipeline(q.pipeline)
	if err != nil {
		return quarantineOptions{}, err
	}
	sel, err := q.sel.selection(nil)
	if err != nil {
		return quarantineOptions{}, err
	}
	if sel.Stage != "" {
		// A stage removed from the file keeps its records in quarantine,
		// so it is not refused; but a typo would read as none quarantined.
		if _, err := stagePlan(pl, sel.Stage); err != nil {
			fmt.Fprintf(g.stderr, "note: %s; showing the records of a stage %q no longer in %s, if it had any\n",
				strings.TrimPrefix(err.Error(), "--stage: "), sel.Stage, g.file)
		}
	}
	cluster, err := q.cf.cluster(g, plan)
	if err != nil {
		return quarantineOptions{}, err
	}
	return quarantineOptions{QuarantineOptions: kafkaops.QuarantineOptions{Cluster: cluster, Topic: pl.Quarantine, Select: sel,
		Replayed: pipeline.ReplayedTopic(pl.Name)},
		pipeline: pl.Name, limit: q.limit, json: q.json}, nil
}

func newQuarantineLsCmd(g *globals) *cobra.Command {
	var q quarantineFlags
	cmd := &cobra.Command{
		Use:   "ls --pipeline P [--stage S] [--match REGEX] [--json]",
		Short: "Count quarantined records by stage and error",
		Long: `Count the records in a pipeline's quarantine topic, grouped by the stage that
failed them and their error, with the first and last failure times, and how
many of them replay quarantine sent back already (REPLAYED; they stay in the
topic, which is a log: COUNT minus REPLAYED are still waiting). A record
replayed that fails again is quarantined again, as a new record.`,
		Example: `  millrace quarantine ls --pipeline orders
  millrace quarantine ls --pipeline orders --stage price --json`,
		Args: noArgs,
	}
	do := func(ctx context.Context, o quarantineOptions) error {
		counts, err := kafkaops.CountQuarantine(ctx, o.QuarantineOptions)
		if err != nil {
			return err
		}
		rows := make([]errorCount, len(counts.Errors))
		for i, c := range counts.Errors {
			rows[i] = errorCount(c)
		}
		if o.json {
			return writeJSON(g.stdout, map[string]any{"pipeline": o.pipeline, "topic": o.Topic, "total": counts.Total,
				"replayed": counts.Replayed, "errors": rows})
		}
		printCounts(g.stdout, o.Topic, counts.Total, counts.Replayed, rows)
		return nil
	}
	command(g, cmd, func([]string) (quarantineOptions, error) { return q.options(g) }, do)
	cmd.Flags().StringVar(&q.pipeline, "pipeline", "", "pipeline whose quarantine to read (required)")
	q.sel.add(cmd, false)
	cmd.Flags().BoolVar(&q.json, "json", false, "print JSON")
	q.cf.add(cmd)
	require(cmd, "pipeline")
	return cmd
}

// errorCount is a row of quarantine ls.
type errorCount kafkaops.ErrorCount

// MarshalJSON writes the row as {"stage", "error", "count", "replayed",
// "first_failure", "last_failure"}, each string as records print theirs
// (recordJSONHelp): "error_base64" where it is not UTF-8.
func (c errorCount) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	appendTextField(&b, "stage", c.Stage)
	b.WriteByte(',')
	appendTextField(&b, "error", c.Error)
	b.WriteString(`,"count":` + strconv.Itoa(c.Count) + `,"replayed":` + strconv.Itoa(c.Replayed) + ",")
	appendTextField(&b, "first_failure", c.FirstFailure)
	b.WriteByte(',')
	appendTextField(&b, "last_failure", c.LastFailure)
	b.WriteByte('}')
	return b.Bytes(), nil
}

func printCounts(w io.Writer, topic string, total, replayed int, rows []errorCount) {
	fmt.Fprintf(w, "%s: %d quarantined %s", topic, total, plural(total, "record"))
	if total == 0 {
		fmt.Fprintln(w)
		return
	}
	fmt.Fprintf(w, ", %d replayed, %d waiting\n", replayed, total-replayed)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "STAGE\tCOUNT\tREPLAYED\tFIRST FAILURE\tLAST FAILURE\tERROR")
	for _, r := range rows {
		msg := strings.ReplaceAll(r.Error, "\n", " ")
		if len(msg) > 120 {
			cut := 117
			for cut > 0 && !utf8.RuneStart(msg[cut]) { // not inside a character
				cut--
			}
			msg = msg[:cut] + "..."
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\t%s\n", payloadText([]byte(r.Stage)), r.Count, r.Replayed,
			shortTime(r.FirstFailure), shortTime(r.LastFailure), payloadText([]byte(msg)))
	}
	tw.Flush()
}

func shortTime(s string) string {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC().Format("2006-01-02T15:04:05Z")
	}
	return s
}

func newQuarantineShowCmd(g *globals) *cobra.Command {
	var q quarantineFlags
	cmd := &cobra.Command{
		Use:   "show --pipeline P [--stage S] [--match REGEX] [--limit N] [--json]",
		Short: "Print quarantined records with their headers",
		Long: `Print the records of a pipeline's quarantine topic, oldest first per partition,
with key, headers (why and where each failed) and payload. --json prints one
JSON object per record, as millrace tail --json does.

` + recordJSONHelp + `

` + recordTextHelp,
		Example: `  millrace quarantine show --pipeline orders --stage price --limit 5
  millrace quarantine show --pipeline orders --match 'timeout' --json | jq .headers
  millrace quarantine show --pipeline orders --json | jq -r '.headers[] | select(.key == "millrace-error") | .value'`,
		Args: noArgs,
	}
	do := func(ctx context.Context, o quarantineOptions) error {
		shown, err := kafkaops.ShowQuarantine(ctx, o.QuarantineOptions, o.limit, func(m *kafkaops.Record) {
			if o.json {
				fmt.Fprintln(g.stdout, string(recordJSON(m)))
			} else {
				printQuarantined(g.stdout, m)
			}
		})
		if err != nil {
			return err
		}
		if !o.json {
			fmt.Fprintf(g.stdout, "%d %s shown\n", shown, plural(shown, "record"))
		}
		return nil
	}
	command(g, cmd, func([]string) (quarantineOptions, error) { return q.options(g) }, do)
	cmd.Flags().StringVar(&q.pipeline, "pipeline", "", "pipeline whose quarantine to read (required)")
	q.sel.add(cmd, false)
	cmd.Flags().IntVarP(&q.limit, "limit", "n", 0, "print at most this many records (0: all)")
	cmd.Flags().BoolVar(&q.json, "json", false, "print one JSON object per record, every byte kept (see above)")
	q.cf.add(cmd)
	require(cmd, "pipeline")
	return cmd
}
