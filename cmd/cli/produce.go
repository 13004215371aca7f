package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/itchyny/gojq"
	"github.com/spf13/cobra"

	"github.com/millrace/millrace/filters"
	"github.com/millrace/millrace/internal/exactjson"
	"github.com/millrace/millrace/internal/jqkey"
	"github.com/millrace/millrace/jobs"
	"github.com/millrace/millrace/kafkaops"
	"github.com/millrace/millrace/pipeline"
)

const produceHelp = `Read one record per line from standard input and send each to the input topic
of a pipeline (created first if it does not exist), with a new millrace-job id
header. Blank lines are skipped. With --priority, the records go to one of the
pipeline's priority topics instead, named by its name or its topic (created
first too). The key is --key for every record, or the result of the jq
expression --key-jq on each line (a JSON document); without either, records
have no key. Prints how many records were sent. A line whose key cannot be
computed is reported with its line number and not sent; the exit code is
then 1. --key-jq keys mean what dedup keys and the jq filter's key: mean: the
first result; a string as its bytes, a number or boolean as its JSON text
(numbers as written), an object or array as its compact JSON text with sorted
keys; no result or null: no key. They are exact: a line that is not UTF-8 is
a line whose key cannot be computed, as decoding it would turn different
bytes into one key.

With --wait (on a pipeline with results:) each job is announced first on
<pipeline>.jobs (accepted, with the millrace-reply-to and
millrace-correlation-id headers given with -H), so that it is visible before
any stage reads it; then produce waits until every job it sent finished, for
up to --wait-timeout (0: until interrupted), and prints a line per job: its
id, state and counts, then the error of each record quarantined. The exit
code is 1 if a job failed or did not finish in time.`

// produceFlags are the flags of `millrace produce`.
type produceFlags struct {
	g                                  *globals
	pipelineName, priority, key, keyJQ string
	headers                            []string
	wait                               bool
	waitTimeout                        time.Duration
	cf                                 clusterFlags
}

// produceOptions are what produce sends, and with --wait how it waits.
type produceOptions struct {
	jobs.ProduceOptions
	wait bool
}

func newProduceCmd(g *globals) *cobra.Command {
	f := &produceFlags{g: g}
	cmd := &cobra.Command{
		Use:   "produce --pipeline NAME [--priority NAME] [--key K | --key-jq EXPR] [-H name=value]... [--wait [--wait-timeout D]]",
		Short: "Send stdin lines as records to a pipeline's input topic",
		Long:  produceHelp,
		Example: `  echo '{"order_id":"o-1","customer":"c-7","qty":2,"price":9.5}' | millrace produce --pipeline orders
  millrace produce --pipeline orders --key-jq .customer < orders.jsonl
  millrace produce --pipeline orders --priority high < rush-orders.jsonl
  echo '{"image":"uploads/cat.png","width":64}' | millrace produce --pipeline thumbnails --key img-7 -H source=upload
  echo '{"day":"2026-11-20"}' | millrace produce --pipeline nightly-report
  echo '{"order_id":"o-2","customer":"c-7","qty":1,"price":4}' | millrace produce --pipeline orders --wait --wait-timeout 2m`,
		Args: noArgs,
	}
	command(g, cmd, f.parse, f.do)
	fl := cmd.Flags()
	fl.StringVar(&f.pipelineName, "pipeline", "", "pipeline whose input topic receives the records (required)")
	fl.StringVar(&f.priority, "priority", "", "send to this priority topic of the pipeline, by its name or topic (default: the input topic)")
	fl.StringVar(&f.key, "key", "", "record key for every record")
	fl.StringVar(&f.keyJQ, "key-jq", "", "jq expression computing each record's key from the line's JSON")
	fl.StringArrayVarP(&f.headers, "header", "H", nil, "record header name=value (repeatable)")
	fl.BoolVar(&f.wait, "wait", false, "wait for each job to finish and print its outcome (needs results: in the pipeline)")
	fl.DurationVar(&f.waitTimeout, "wait-timeout", 0, "with --wait, how long to wait (0: until interrupted)")
	f.cf.add(cmd)
	require(cmd, "pipeline")
	return cmd
}

func (f *produceFlags) parse([]string) (produceOptions, error) {
	if f.key != "" && f.keyJQ != "" {
		return produceOptions{}, usagef("use --key or --key-jq, not both")
	}
	if err := f.checkWait(); err != nil {
		return produceOptions{}, err
	}
	hdrs, err := parseHeaders(f.headers)
	if err != nil {
		return produceOptions{}, err
	}
	keyOf, err := keyFunc(f.key, f.keyJQ)
	if err != nil {
		return produceOptions{}, err
	}
	plan, pl, err := f.g.loadPipeline(f.pipelineName)
	if err != nil {
		return produceOptions{}, err
	}
	topic, err := produceTopic(pl, f.priority)
	if err != nil {
		return produceOptions{}, err
	}
	cluster, err := f.cf.cluster(f.g, plan)
	if err != nil {
		return produceOptions{}, err
	}
	stderr := f.g.stderr
	o := produceOptions{ProduceOptions: jobs.ProduceOptions{ProduceOptions: kafkaops.ProduceOptions{Cluster: cluster,
		Topic: pipeline.Topic{Name: topic, Partitions: pl.Partitions}, ReplicationFactor: plan.ReplicationFactor,
		Lines: f.g.stdin, KeyOf: keyOf, Headers: hdrs, Log: f.g.log,
		LineError: func(line int, err error) { fmt.Fprintf(stderr, "stdin:%d: %v\n", line, err) }}}}
	if f.wait {
		r, ok := f.g.resultsOf(pl)
		if !ok {
			return produceOptions{}, usagef("--wait needs results: in the pipeline (pipeline %q keeps no job results)", pl.Name)
		}
		o.wait, o.Source, o.Events, o.Timeout = true, r.source, r.events, f.waitTimeout
	}
	return o, nil
}

// checkWait checks --wait-timeout.
func (f *produceFlags) checkWait() error {
	switch {
	case f.waitTimeout < 0:
		return usagef("--wait-timeout %s: want 0 (until interrupted) or more", f.waitTimeout)
	case f.waitTimeout > 0 && !f.wait:
		return usagef("--wait-timeout needs --wait")
	}
	return nil
}

func (f *produceFlags) do(ctx context.Context, opts produceOptions) error {
	if opts.wait {
		return f.produceAndWait(ctx, opts)
	}
	res, err := kafkaops.Produce(ctx, opts.ProduceOptions.ProduceOptions)
	if err != nil {
		return err
	}
	fmt.Fprint(f.g.stdout, produceSummary(res, opts.Topic.Name))
	if res.Failed > 0 {
		fmt.Fprint(f.g.stderr, notSent(res.Failed))
		return errPrinted
	}
	return nil
}

// produceAndWait is produce --wait: it produces, waits for the jobs and
// prints their outcomes.
func (f *produceFlags) produceAndWait(ctx context.Context, opts produceOptions) error {
	ctx, stop := signalContext(ctx, f.g.log, stopping{again: "exiting at once"})
	defer stop()
	res, err := jobs.ProduceAndWait(ctx, opts.ProduceOptions)
	interrupted := errors.Is(err, context.Canceled) && ctx.Err() != nil && len(res.Statuses) > 0
	if err != nil && !interrupted {
		return err
	}
	fmt.Fprint(f.g.stdout, produceSummary(res.ProduceResult, opts.Topic.Name))
	failed, unfinished := 0, 0
	for _, s := range res.Statuses {
		printOutcome(f.g.stdout, s, opts.Source.Shape.Stages)
		switch {
		case s.State == jobs.StateFailed:
			failed++
		case !s.State.Finished():
			unfinished++
		}
	}
	noteSkipped(f.g.stderr, res.Skipped)
	if res.Failed > 0 {
		fmt.Fprint(f.g.stderr, notSent(res.Failed))
	}
	if failed > 0 {
		fmt.Fprintf(f.g.stderr, "%d %s failed\n", failed, plural(failed, "job"))
	}
	if unfinished > 0 {
		why := "interrupted"
		if res.TimedOut {
			why = "--wait-timeout " + pipeline.FormatDuration(opts.Timeout) + " passed"
		}
		fmt.Fprintf(f.g.stderr, "%d %s did not finish: %s\n", unfinished, plural(unfinished, "job"), why)
	}
	if res.Failed > 0 || failed > 0 || unfinished > 0 {
		return errPrinted
	}
	return nil
}

// printOutcome is produce --wait's line for a job: its id, state and
// counts (or where its records wait), then a line per quarantined record.
func printOutcome(w io.Writer, s jobs.Status, stages []string) {
	what := countsText(s.Counts)
	if !s.State.Finished() {
		what = "waiting at " + waitingText(s.Waiting, stages)
		if len(s.Waiting) == 0 {
			what = "not seen yet"
		}
	}
	fmt.Fprintf(w, "%s  %-9s  %s\n", quoteIfNeeded(s.Job), s.State, what)
	for _, e := range s.Errors {
		fmt.Fprintf(w, "    %s\n", failureText(e))
	}
}

// produceSummary is produce's line on stdout.
func produceSummary(res kafkaops.ProduceResult, topic string) string {
	if res.Sent == 1 {
		return fmt.Sprintf("sent 1 record to %s: job %s\n", topic, res.FirstJob)
	}
	return fmt.Sprintf("sent %d %s to %s\n", res.Sent, plural(res.Sent, "record"), topic)
}

// notSent is produce's line on stderr when lines were not sent.
func notSent(n int) string {
	if n == 1 {
		return "1 line was not sent\n"
	}
	return fmt.Sprintf("%d lines were not sent\n", n)
}

// produceTopic is the topic produce sends to: the pipeline's input, or the
// priority topic called priority (by name or topic).
func produceTopic(pl *pipeline.PipelinePlan, priority string) (string, error) {
	if priority == "" {
		return pl.Input, nil
	}
	var names []string
	for _, wt := range pl.Priority {
		if wt.Name == priority || wt.Topic == priority {
			return wt.Topic, nil
		}
		names = append(names, wt.Name)
	}
	return "", usagef("--priority %q: pipeline %q has no such priority topic (names: %s)",
		priority, pl.Name, strings.Join(names, ", "))
}

// parseHeaders reads --header name=value flags.
func parseHeaders(hs []string) ([]kafkaops.Header, error) {
	out := make([]kafkaops.Header, 0, len(hs))
	for _, h := range hs {
		k, v, ok := strings.Cut(h, "=")
		if !ok || k == "" {
			return nil, usagef("--header %q: want name=value", h)
		}
		if k == filters.HeaderJob {
			return nil, usagef("--header %s: set by produce (a new id per record)", k)
		}
		out = append(out, kafkaops.Header{Key: []byte(k), Value: []byte(v)})
	}
	return out, nil
}

// keyFunc returns how each line's key is computed: key for every line,
// the result of the jq expression keyJQ, or none (nil).
func keyFunc(key, keyJQ string) (func([]byte) ([]byte, error), error) {
	switch {
	case key != "":
		return func([]byte) ([]byte, error) { return []byte(key), nil }, nil
	case keyJQ == "":
		return nil, nil
	}
	q, err := gojq.Parse(keyJQ)
	if err != nil {
		return nil, usagef("--key-jq: %v", err)
	}
	code, err := gojq.Compile(q)
	if err != nil {
		return nil, usagef("--key-jq: %v", err)
	}
	return func(line []byte) ([]byte, error) {
		// Numbers keep their text: as float64, ids past 2^53 would share
		// keys.
		// Decoding would make invalid UTF-8 and lone surrogates U+FFFD:
		// different bytes would share a key.
		v, err := exactjson.ParseText(line)
		if _, ok := errors.AsType[*exactjson.TextError](err); ok {
			return nil, fmt.Errorf("--key-jq: line is not UTF-8: %w", err)
		}
		if err != nil {
			return nil, fmt.Errorf("--key-jq needs JSON lines: %w", err)
		}
		res, ok, err := jqkey.First(code.Run(v))
		if err != nil {
			return nil, fmt.Errorf("--key-jq: %w", err)
		}
		if !ok {
			return nil, nil
		}
		k, err := jqkey.Bytes(res)
		if err != nil {
			return nil, fmt.Errorf("--key-jq: %w", err)
		}
		return k, nil
	}, nil
}
