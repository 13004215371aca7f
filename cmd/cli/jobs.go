package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/millrace/millrace/jobs"
	"github.com/millrace/millrace/pipeline"
)

// jobResults is what the commands need of a pipeline's results: block.
type jobResults struct {
	// source is what a job view reads.
	source jobs.Source
	// events is the events topic, as `millrace run` creates it.
	events pipeline.Topic
}

// resultsOf says whether pipeline pl keeps job results (a results: block)
// and where: the one place the commands learn it.
func resultsOf(pl *pipeline.PipelinePlan) (jobResults, bool) {
	r := pl.Results
	if r == nil {
		return jobResults{}, false
	}
	src := jobs.Source{Shape: *jobs.ShapeOf(*pl), Topic: r.EventsTopic, Keep: r.Keep}
	return jobResults{source: src, events: pipeline.Topic{Name: r.EventsTopic, Partitions: pl.Partitions,
		Config: pipeline.JobsTopicConfig(r.Keep)}}, true
}

// resultsOf is the package's resultsOf, or the one a test put in g.results.
func (g *globals) resultsOf(pl *pipeline.PipelinePlan) (jobResults, bool) {
	if g.results != nil {
		return g.results(pl)
	}
	return resultsOf(pl)
}

func newJobsCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "jobs",
		Short: "Show job status (pipelines with a `results:` block)",
		Long: `Show the status of jobs, folded from the events the stages of a pipeline with
results: write to <pipeline>.jobs (see docs/jobs.md).

  jobs status  one job: where it is, its counts and errors; can wait for it
  jobs ls      a pipeline's jobs, newest first

A job is accepted (produced; no stage has read it yet), running, succeeded or
failed (finished, with a record quarantined); unknown when no event of it was
seen, or it finished longer ago than results.keep. Both commands read outside
any consumer group and change nothing.`,
		Args: noArgs,
		RunE: func(*cobra.Command, []string) error {
			return usagef("jobs needs a subcommand: status or ls")
		},
	}
	cmd.AddCommand(newJobsStatusCmd(g), newJobsLsCmd(g))
	return cmd
}

// jobStatusOptions say which job jobs status looks for, and how it prints.
type jobStatusOptions struct {
	jobs.FindOptions
	json bool
}

const jobStatusHelp = `Print the status of the job with id ID (its millrace-job header, which
millrace produce prints with --wait): its state, its records' counts (outputs,
dropped, quarantined, skipped), the stages its records still wait at, and the
error of each record quarantined. Without --pipeline it looks in every
pipeline with results:, reading only the partition of <pipeline>.jobs that
holds the job's events.

With --wait it waits until the job finishes (succeeded or failed), for up to
the duration given, then prints it; a job not seen yet is waited for too.
--json prints the status document replies and callbacks carry.

Exit codes: 0 when the job succeeded, is running or accepted; 1 when it
failed, is unknown, or is still running when --wait passes; 2 bad usage.`

func newJobsStatusCmd(g *globals) *cobra.Command {
	var (
		o            jobStatusOptions
		pipelineName string
		cf           clusterFlags
	)
	cmd := &cobra.Command{
		Use:   "status ID [--pipeline P] [--json] [--wait DURATION]",
		Short: "Print a job's status, or wait for it to finish",
		Long:  jobStatusHelp,
		Example: `  millrace jobs status 0b9d6c1e-4f5a-4f0e-9a57-2d1c3e8b7a60
  millrace jobs status 0b9d6c1e-4f5a-4f0e-9a57-2d1c3e8b7a60 --pipeline orders --wait 5m
  millrace jobs status 0b9d6c1e-4f5a-4f0e-9a57-2d1c3e8b7a60 --json`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) != 1 || args[0] == "" {
				return usagef("jobs status takes one job ID, for example: millrace jobs status 0b9d6c1e-4f5a-4f0e-9a57-2d1c3e8b7a60")
			}
			return nil
		},
	}
	parse := func(args []string) (jobStatusOptions, error) {
		if o.Wait < 0 {
			return o, usagef("--wait %s: want 0 (do not wait) or more, like 5m", o.Wait)
		}
		f, err := g.load()
		if err != nil {
			return o, err
		}
		plan := f.Plan()
		o.Sources = nil
		if pipelineName != "" {
			pl, err := plan.Pipeline(pipelineName)
			if err != nil {
				return o, usagef("--pipeline: %v", err)
			}
			r, ok := g.resultsOf(pl)
			if !ok {
				return o, usagef("--pipeline %q keeps no job results (add results: to it)", pipelineName)
			}
			o.Sources = append(o.Sources, r.source)
		} else {
			for i := range plan.Pipelines {
				if r, ok := g.resultsOf(&plan.Pipelines[i]); ok {
					o.Sources = append(o.Sources, r.source)
				}
			}
			if len(o.Sources) == 0 {
				return o, usagef("no pipeline of %s keeps job results (add results: to one)", g.file)
			}
		}
		if o.Cluster, err = cf.cluster(g, plan); err != nil {
			return o, err
		}
		o.Job, o.Log = args[0], g.log
		return o, nil
	}
	do := func(ctx context.Context, o jobStatusOptions) error {
		ctx, stop := signalContext(ctx, g.log, stopping{again: "exiting at once"})
		defer stop()
		f, err := jobs.Find(ctx, o.FindOptions)
		interrupted := errors.Is(err, context.Canceled) && ctx.Err() != nil
		if err != nil && !interrupted {
			return err
		}
		if o.json {
			if err := writeJSON(g.stdout, f.Status); err != nil {
				return err
			}
		} else {
			printStatus(g.stdout, f.Status, stagesOf(o.Sources, f.Status.Pipeline))
		}
		noteSkipped(g.stderr, f.Skipped)
		s := f.Status
		switch {
		case interrupted || f.TimedOut:
			why := "interrupted"
			if f.TimedOut {
				why = "--wait " + pipeline.FormatDuration(o.Wait) + " passed"
			}
			fmt.Fprintf(g.stderr, "job %s is still %s: %s\n", s.Job, s.State, why)
			return errPrinted
		case s.State == jobs.StateUnknown:
			fmt.Fprintf(g.stderr, "job %s: %s\n", s.Job, notFound(o.Sources, f.NoEvents))
			return errPrinted
		case s.State == jobs.StateFailed:
			return errPrinted
		}
		return nil
	}
	command(g, cmd, parse, do)
	fl := cmd.Flags()
	fl.StringVar(&pipelineName, "pipeline", "", "look in this pipeline only (default: every pipeline with results:)")
	fl.BoolVar(&o.json, "json", false, "print the status as a JSON document")
	fl.DurationVar(&o.Wait, "wait", 0, "wait up to this long for the job to finish (0: do not wait)")
	cf.add(cmd)
	return cmd
}

// notFound says where an unknown job was looked for.
func notFound(sources []jobs.Source, noEvents []string) string {
	var names []string
	keep := time.Duration(0)
	for _, s := range sources {
		names = append(names, s.Shape.Pipeline)
		keep = max(keep, s.Keep)
	}
	msg := fmt.Sprintf("no such job in %s %s (never produced there, or finished more than %s ago)",
		plural(len(names), "pipeline"), strings.Join(names, ", "), pipeline.FormatDuration(keep))
	if len(noEvents) > 0 {
		msg += fmt.Sprintf("; %s did not run with results: yet", strings.Join(noEvents, ", "))
	}
	return msg
}

// stagesOf are the stages of pipeline name, in order, among sources.
func stagesOf(sources []jobs.Source, name string) []string {
	for _, s := range sources {
		if s.Shape.Pipeline == name {
			return s.Shape.Stages
		}
	}
	return nil
}

// noteSkipped tells, on stderr, of records of an events topic passed over.
func noteSkipped(w io.Writer, n int) {
	switch {
	case n == 1:
		fmt.Fprintln(w, "passed over 1 record of the events topic that is not a job event (see --log-level debug)")
	case n > 1:
		fmt.Fprintf(w, "passed over %d records of the events topic that are not job events (see --log-level debug)\n", n)
	}
}

// printStatus prints a job's status as text, one field a line; stages
// order the stages its records wait at.
func printStatus(w io.Writer, s jobs.Status, stages []string) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	line := func(k, v string) { fmt.Fprintf(tw, "%s\t%s\n", k, v) }
	line("job", quoteIfNeeded(s.Job))
	if s.Pipeline != "" {
		line("pipeline", s.Pipeline)
	}
	line("status", string(s.State))
	if s.State == jobs.StateUnknown {
		tw.Flush()
		return
	}
	line("started", stamp(s.Started))
	line("updated", stamp(s.Updated))
	if s.Finished != nil {
		line("finished", stamp(*s.Finished)+", after "+pipeline.FormatDuration(s.Finished.Sub(s.Started)))
	}
	line("counts", countsText(s.Counts))
	if len(s.Waiting) > 0 {
		line("waiting", waitingText(s.Waiting, stages))
	}
	var reply []string
	if s.ReplyTo != "" {
		reply = append(reply, "to "+quoteIfNeeded(s.ReplyTo))
	}
	if s.CorrelationID != "" {
		reply = append(reply, "correlation id "+quoteIfNeeded(s.CorrelationID))
	}
	if len(reply) > 0 {
		line("reply", strings.Join(reply, ", "))
	}
	if len(s.Results) > 0 {
		var locs []string
		for i, l := range s.Results {
			if i == 10 {
				locs = append(locs, fmt.Sprintf("and %d more", len(s.Results)-10))
				break
			}
			locs = append(locs, l.String())
		}
		line("results", strings.Join(locs, " "))
	}
	for _, e := range s.Errors {
		line("error", failureText(e))
	}
	tw.Flush()
}

// stamp is a time as the commands print it, in UTC to the second.
func stamp(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05Z") }

func countsText(c jobs.Counts) string {
	return fmt.Sprintf("outputs %d, dropped %d, quarantined %d, skipped %d", c.Outputs, c.Dropped, c.Quarantined, c.Skipped)
}

// waitingText is "check 1, price 2": the stages in pipeline order, then
// any others (of an older version of the pipeline) by name.
func waitingText(waiting map[string]int, stages []string) string {
	var names []string
	for name := range waiting {
		names = append(names, name)
	}
	slices.SortFunc(names, func(a, b string) int {
		ia, ib := slices.Index(stages, a), slices.Index(stages, b)
		switch {
		case ia >= 0 && ib >= 0:
			return ia - ib
		case ia >= 0:
			return -1
		case ib >= 0:
			return 1
		}
		return strings.Compare(a, b)
	})
	parts := make([]string, len(names))
	for i, name := range names {
		parts[i] = fmt.Sprintf("%s %d", name, waiting[name])
	}
	return strings.Join(parts, ", ")
}

// failureText is a quarantined record of a job: "price at T
// (orders.price/0/7): error".
func failureText(f jobs.Failure) string {
	where := ""
	if f.Origin != "" {
		where = " (" + f.Origin + ")"
	}
	return fmt.Sprintf("%s at %s%s: %s", quoteIfNeeded(f.Stage), stamp(f.At), where, payloadText([]byte(f.Error)))
}

// jobsLsOptions say whose jobs jobs ls lists, and how it prints.
type jobsLsOptions struct {
	jobs.ListOptions
	// sinceAgo is --since as a duration: Filter.Since is that long before
	// the command runs.
	sinceAgo time.Duration
	json     bool
}

func newJobsLsCmd(g *globals) *cobra.Command {
	var (
		o                           jobsLsOptions
		pipelineName, status, since string
		cf                          clusterFlags
	)
	cmd := &cobra.Command{
		Use:   "ls --pipeline P [--status S] [--since T] [--limit N] [--json]",
		Short: "List a pipeline's jobs, newest first",
		Long: `List the jobs of a pipeline with results:, newest (last started) first, with
their state and counts: every job of <pipeline>.jobs up to its end now, but
those finished longer ago than results.keep. --status keeps one state
(accepted, running, succeeded or failed); --since keeps the jobs started at or
after a time, given as a duration ago (1h, 30m) or a time (RFC 3339, or
without a zone, in UTC: 2026-11-20T14:00:00, or a date, 2026-11-20);
--limit keeps the newest N (0: all). --json prints a JSON array of status
documents (each as jobs status --json prints it).`,
		Example: `  millrace jobs ls --pipeline orders
  millrace jobs ls --pipeline orders --status failed --since 1h
  millrace jobs ls --pipeline orders --since 2026-11-20T14:00:00Z --limit 10 --json | jq -r '.[].job'`,
		Args: noArgs,
	}
	parse := func([]string) (jobsLsOptions, error) {
		if o.Filter.Limit < 0 {
			return o, usagef("--limit %d: want 0 (all) or more", o.Filter.Limit)
		}
		switch s := jobs.State(status); s {
		case "", jobs.StateAccepted, jobs.StateRunning, jobs.StateSucceeded, jobs.StateFailed:
			o.Filter.State = s
		default:
			return o, usagef("--status %q: want accepted, running, succeeded or failed", status)
		}
		var err error
		if o.Filter.Since, o.sinceAgo, err = parseSince(since); err != nil {
			return o, err
		}
		plan, pl, err := g.loadPipeline(pipelineName)
		if err != nil {
			return o, err
		}
		r, ok := g.resultsOf(pl)
		if !ok {
			return o, usagef("--pipeline %q keeps no job results (add results: to it)", pipelineName)
		}
		o.Source, o.Log = r.source, g.log
		o.Cluster, err = cf.cluster(g, plan)
		return o, err
	}
	do := func(ctx context.Context, o jobsLsOptions) error {
		if o.sinceAgo > 0 {
			o.Filter.Since = time.Now().Add(-o.sinceAgo)
		}
		l, err := jobs.ListJobs(ctx, o.ListOptions)
		if errors.Is(err, jobs.ErrNoEvents) {
			fmt.Fprintf(g.stderr, "%s does not exist: pipeline %s has not run with results: yet\n", o.Source.Topic, o.Source.Shape.Pipeline)
			err = nil
		}
		if err != nil {
			return err
		}
		if o.json {
			if l.Jobs == nil {
				l.Jobs = []jobs.Status{} // [], not null
			}
			if err := writeJSON(g.stdout, l.Jobs); err != nil {
				return err
			}
		} else {
			printJobs(g.stdout, l.Jobs)
		}
		noteSkipped(g.stderr, l.Skipped)
		return nil
	}
	command(g, cmd, parse, do)
	fl := cmd.Flags()
	fl.StringVar(&pipelineName, "pipeline", "", "pipeline whose jobs to list (required)")
	fl.StringVar(&status, "status", "", "only jobs in this state: accepted, running, succeeded or failed")
	fl.StringVar(&since, "since", "", "only jobs started at or after this time: "+agoForms)
	fl.IntVarP(&o.Filter.Limit, "limit", "n", 0, "list at most this many jobs, the newest (0: all)")
	fl.BoolVar(&o.json, "json", false, "print a JSON array of status documents")
	cf.add(cmd)
	require(cmd, "pipeline")
	return cmd
}

// parseSince reads jobs ls --since: a duration ago, which the command
// counts back from when it runs, or a time (see parseAgo); "" is no bound.
func parseSince(s string) (at time.Time, ago time.Duration, err error) {
	if s == "" {
		return at, 0, nil
	}
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return at, d, nil
	}
	at, err = parseAgo("since", s, time.Time{})
	return at, 0, err
}

// printJobs prints jobs as a table, and how many there are.
func printJobs(w io.Writer, ss []jobs.Status) {
	if len(ss) > 0 {
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "JOB\tSTATUS\tSTARTED\tUPDATED\tOUTPUTS\tDROPPED\tQUARANTINED\tSKIPPED")
		for _, s := range ss {
			c := s.Counts
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\n", quoteIfNeeded(s.Job), s.State, stamp(s.Started), stamp(s.Updated),
				c.Outputs, c.Dropped, c.Quarantined, c.Skipped)
		}
		tw.Flush()
	}
	fmt.Fprintf(w, "%d %s\n", len(ss), plural(len(ss), "job"))
}
