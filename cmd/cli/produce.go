package cli

import (
	"bufio"
	"fmt"
	"strings"
	"time"

	"github.com/IBM/sarama"
	"github.com/google/uuid"
	"github.com/itchyny/gojq"
	"github.com/spf13/cobra"

	"github.com/millrace/millrace/filters"
	"github.com/millrace/millrace/internal/exactjson"
	"github.com/millrace/millrace/internal/jqkey"
	"github.com/millrace/millrace/kafkaops"
	"github.com/millrace/millrace/pipeline"
	"github.com/millrace/millrace/transport"
)

const produceBatch = 500

func newProduceCmd(g *globals) *cobra.Command {
	var (
		pipelineName, priority, key, keyJQ string
		headers                            []string
		timeout                            time.Duration
	)
	cmd := &cobra.Command{
		Use:   "produce --pipeline NAME [--priority NAME]",
		Short: "Send stdin lines as records to a pipeline's input topic",
		Long: `Read one record per line from standard input and send each to the input topic
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
bytes into one key.`,
		Example: `  echo '{"order_id":"o-1","qty":2,"price":9.5}' | millrace produce --pipeline orders
  millrace produce --pipeline orders --key-jq .customer_id < orders.jsonl
  millrace produce --pipeline orders --priority high < rush-orders.jsonl
  millrace produce --pipeline thumbnails --key img-7 -H source=upload < event.json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if key != "" && keyJQ != "" {
				return fmt.Errorf("use --key or --key-jq, not both")
			}
			hdrs, err := parseHeaders(headers)
			if err != nil {
				return err
			}
			keyOf, err := keyFunc(key, keyJQ)
			if err != nil {
				return err
			}
			f, err := g.load()
			if err != nil {
				return err
			}
			plan := f.Plan()
			pl, err := plan.Pipeline(pipelineName)
			if err != nil {
				return err
			}
			topic, err := produceTopic(pl, priority)
			if err != nil {
				return err
			}
			cfg := transport.NewSaramaConfig(plan.ClientID)
			client, err := transport.ConnectTimeout(cmd.Context(), g.clientBrokers(plan), cfg, timeout)
			if err != nil {
				return err
			}
			defer client.Close()
			// The pipeline may not have run yet: create the topic as run would.
			log, err := g.logger()
			if err != nil {
				return err
			}
			if err := kafkaops.EnsureTopics(client, []pipeline.Topic{{Name: topic, Partitions: pl.Partitions}},
				plan.ReplicationFactor, log); err != nil {
				return err
			}
			producer, err := sarama.NewSyncProducerFromClient(client)
			if err != nil {
				return fmt.Errorf("open producer: %w", err)
			}
			defer producer.Close()
			p := &producing{topic: topic, producer: producer, keyOf: keyOf, headers: hdrs, g: g}
			if err := p.run(); err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "sent %d %s to %s\n", p.sent, plural(p.sent, "record"), topic)
			if p.failed > 0 {
				fmt.Fprintf(g.stderr, "%d lines were not sent\n", p.failed)
				return exitError{1}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&pipelineName, "pipeline", "", "pipeline whose input topic receives the records (required)")
	cmd.Flags().StringVar(&priority, "priority", "",
		"send to this priority topic of the pipeline, by its name or topic (default: the input topic)")
	cmd.Flags().StringVar(&key, "key", "", "record key for every record")
	cmd.Flags().StringVar(&keyJQ, "key-jq", "", "jq expression computing each record's key from the line's JSON")
	cmd.Flags().StringArrayVarP(&headers, "header", "H", nil, "record header name=value (repeatable)")
	cmd.Flags().DurationVar(&timeout, "connect-timeout", 10*time.Second, "how long to wait for the brokers")
	_ = cmd.MarkFlagRequired("pipeline")
	return cmd
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
	return "", usageError{fmt.Sprintf("--priority %q: pipeline %q has no such priority topic (names: %s)",
		priority, pl.Name, strings.Join(names, ", "))}
}

type producing struct {
	g            *globals
	topic        string
	producer     sarama.SyncProducer
	keyOf        func([]byte) ([]byte, error)
	headers      []sarama.RecordHeader
	sent, failed int
}

func (p *producing) run() error {
	sc := bufio.NewScanner(p.g.stdin)
	sc.Buffer(make([]byte, 64*1024), 16<<20)
	batch := make([]*sarama.ProducerMessage, 0, produceBatch)
	line := 0
	for sc.Scan() {
		line++
		text := sc.Bytes()
		if len(strings.TrimSpace(string(text))) == 0 {
			continue
		}
		value := append([]byte{}, text...)
		k, err := p.keyOf(value)
		if err != nil {
			fmt.Fprintf(p.g.stderr, "stdin:%d: %v\n", line, err)
			p.failed++
			continue
		}
		m := &sarama.ProducerMessage{Topic: p.topic, Value: sarama.ByteEncoder(value),
			Headers: append([]sarama.RecordHeader{{Key: []byte(filters.HeaderJob), Value: []byte(uuid.NewString())}}, p.headers...)}
		if k != nil {
			m.Key = sarama.ByteEncoder(k)
		}
		if batch = append(batch, m); len(batch) == produceBatch {
			if err := p.flush(batch); err != nil {
				return err
			}
			batch = batch[:0]
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read stdin line %d: %w", line+1, err)
	}
	return p.flush(batch)
}

func (p *producing) flush(batch []*sarama.ProducerMessage) error {
	if len(batch) == 0 {
		return nil
	}
	if err := p.producer.SendMessages(batch); err != nil {
		return fmt.Errorf("send to %s (after %d sent): %w", p.topic, p.sent, err)
	}
	p.sent += len(batch)
	return nil
}

func parseHeaders(hs []string) ([]sarama.RecordHeader, error) {
	out := make([]sarama.RecordHeader, 0, len(hs))
	for _, h := range hs {
		k, v, ok := strings.Cut(h, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("header %q: want name=value", h)
		}
		if k == filters.HeaderJob {
			return nil, fmt.Errorf("header %s is set by produce", k)
		}
		out = append(out, sarama.RecordHeader{Key: []byte(k), Value: []byte(v)})
	}
	return out, nil
}

// keyFunc returns how each line's key is computed.
func keyFunc(key, keyJQ string) (func([]byte) ([]byte, error), error) {
	switch {
	case key != "":
		return func([]byte) ([]byte, error) { return []byte(key), nil }, nil
	case keyJQ == "":
		return func([]byte) ([]byte, error) { return nil, nil }, nil
	}
	q, err := gojq.Parse(keyJQ)
	if err != nil {
		return nil, fmt.Errorf("--key-jq: %w", err)
	}
	code, err := gojq.Compile(q)
	if err != nil {
		return nil, fmt.Errorf("--key-jq: %w", err)
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

func plural(n int, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}
