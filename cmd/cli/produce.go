package cli

import (
	"context"
	"fmt"
	"strings"

	"github.com/itchyny/gojq"
	"github.com/spf13/cobra"

	"github.com/millrace/millrace/filters"
	"github.com/millrace/millrace/internal/exactjson"
	"github.com/millrace/millrace/internal/jqkey"
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
bytes into one key.`

// produceFlags are the flags of `millrace produce`.
type produceFlags struct {
	g                                  *globals
	pipelineName, priority, key, keyJQ string
	headers                            []string
	cf                                 clusterFlags
}

func newProduceCmd(g *globals) *cobra.Command {
	f := &produceFlags{g: g}
	cmd := &cobra.Command{
		Use:   "produce --pipeline NAME [--priority NAME]",
		Short: "Send stdin lines as records to a pipeline's input topic",
		Long:  produceHelp,
		Example: `  echo '{"order_id":"o-1","customer":"c-7","qty":2,"price":9.5}' | millrace produce --pipeline orders
  millrace produce --pipeline orders --key-jq .customer < orders.jsonl
  millrace produce --pipeline orders --priority high < rush-orders.jsonl
  echo '{"image":"uploads/cat.png","width":64}' | millrace produce --pipeline thumbnails --key img-7 -H source=upload
  echo '{"day":"2026-11-20"}' | millrace produce --pipeline nightly-report`,
		Args: cobra.NoArgs,
	}
	command(g, cmd, f.parse, f.do)
	fl := cmd.Flags()
	fl.StringVar(&f.pipelineName, "pipeline", "", "pipeline whose input topic receives the records (required)")
	fl.StringVar(&f.priority, "priority", "", "send to this priority topic of the pipeline, by its name or topic (default: the input topic)")
	fl.StringVar(&f.key, "key", "", "record key for every record")
	fl.StringVar(&f.keyJQ, "key-jq", "", "jq expression computing each record's key from the line's JSON")
	fl.StringArrayVarP(&f.headers, "header", "H", nil, "record header name=value (repeatable)")
	f.cf.add(cmd)
	require(cmd, "pipeline")
	return cmd
}

func (f *produceFlags) parse([]string) (kafkaops.ProduceOptions, error) {
	if f.key != "" && f.keyJQ != "" {
		return kafkaops.ProduceOptions{}, usagef("use --key or --key-jq, not both")
	}
	hdrs, err := parseHeaders(f.headers)
	if err != nil {
		return kafkaops.ProduceOptions{}, err
	}
	keyOf, err := keyFunc(f.key, f.keyJQ)
	if err != nil {
		return kafkaops.ProduceOptions{}, err
	}
	plan, pl, err := f.g.loadPipeline(f.pipelineName)
	if err != nil {
		return kafkaops.ProduceOptions{}, err
	}
	topic, err := produceTopic(pl, f.priority)
	if err != nil {
		return kafkaops.ProduceOptions{}, err
	}
	cluster, err := f.cf.cluster(f.g, plan)
	if err != nil {
		return kafkaops.ProduceOptions{}, err
	}
	stderr := f.g.stderr
	return kafkaops.ProduceOptions{Cluster: cluster, Topic: pipeline.Topic{Name: topic, Partitions: pl.Partitions},
		ReplicationFactor: plan.ReplicationFactor, Lines: f.g.stdin, KeyOf: keyOf, Headers: hdrs, Log: f.g.log,
		LineError: func(line int, err error) { fmt.Fprintf(stderr, "stdin:%d: %v\n", line, err) }}, nil
}

func (f *produceFlags) do(ctx context.Context, opts kafkaops.ProduceOptions) error {
	res, err := kafkaops.Produce(ctx, opts)
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

// produceSummary is produce's line on stdout.
func produceSummary(res kafkaops.ProduceResult, topic string) string {
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
		v, err := exactjson.Parse(line)
		if err != nil {
			return nil, fmt.Errorf("--key-jq needs JSON lines: %w", err)
		}
		// Decoding made invalid UTF-8 and lone surrogates U+FFFD: different
		// bytes would share a key.
		if err := exactjson.CheckText(line); err != nil {
			return nil, fmt.Errorf("--key-jq: line is not UTF-8: %w", err)
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
