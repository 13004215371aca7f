package cli

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/IBM/sarama"
	"github.com/millrace/millrace/transport"
	"github.com/spf13/cobra"
)

func newTailCmd(g *globals) *cobra.Command {
	var (
		fromBeginning, asJSON, exitAtEnd bool
		limit                            int
		timeout                          time.Duration
	)
	cmd := &cobra.Command{
		Use:   "tail TOPIC",
		Short: "Print the records of a topic with their keys and headers",
		Long: `Print the records of a topic, from every partition, with partition, offset,
key and headers. By default it prints records that arrive from now on and keeps
going until interrupted; --from-beginning starts at the oldest record, -n stops
after N records and --exit stops once the end of every partition is reached.
It reads outside any consumer group, so it never moves a stage's offsets.

` + recordJSONHelp + `

` + recordTextHelp,
		Example: `  millrace tail orders.confirmed --from-beginning
  millrace tail orders.confirmed --from-beginning --exit --json | jq -r .payload
  millrace tail orders.confirmed --from-beginning --exit --json | jq '.payload | fromjson | .total'
  millrace tail thumbnails.done -n 1`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageError{"tail takes one TOPIC, for example: millrace tail orders.confirmed --from-beginning"}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			log, err := g.logger()
			if err != nil {
				return err
			}
			var brokers []string
			if f, err := g.loadQuiet(); err == nil {
				brokers = g.clientBrokers(f.Plan())
			} else {
				brokers = g.clientBrokers(nil)
			}
			ctx, stop := signalContext(cmd.Context(), log)
			defer stop()
			client, err := transport.ConnectTimeout(ctx, brokers, transport.NewSaramaConfig(""), timeout)
			if err != nil {
				return err
			}
			defer client.Close()
			t := &tailing{g: g, topic: args[0], json: asJSON, limit: limit, exit: exitAtEnd}
			return t.run(ctx, client, fromBeginning)
		},
	}
	cmd.Flags().BoolVar(&fromBeginning, "from-beginning", false, "start at the oldest record of each partition")
	cmd.Flags().IntVarP(&limit, "limit", "n", 0, "stop after this many records (0: no limit)")
	cmd.Flags().BoolVarP(&exitAtEnd, "exit", "e", false, "stop at the end of every partition")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON object per record, every byte kept (see above)")
	cmd.Flags().DurationVar(&timeout, "connect-timeout", 10*time.Second, "how long to wait for the brokers")
	return cmd
}

type tailing struct {
	g     *globals
	topic string
	json  bool
	limit int
	exit  bool

	mu      sync.Mutex
	printed int
}

func (t *tailing) run(ctx context.Context, client sarama.Client, fromBeginning bool) error {
	parts, err := client.Partitions(t.topic)
	if err != nil {
		return fmt.Errorf("topic %s: %w", t.topic, err)
	}
	consumer, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		return fmt.Errorf("open consumer: %w", err)
	}
	defer consumer.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, len(parts))
	for _, p := range parts {
		start := sarama.OffsetNewest
		if fromBeginning {
			start = sarama.OffsetOldest
		}
		end, err := client.GetOffset(t.topic, p, sarama.OffsetNewest)
		if err != nil {
			return fmt.Errorf("topic %s partition %d: %w", t.topic, p, err)
		}
		first, err := client.GetOffset(t.topic, p, start)
		if err != nil {
			return fmt.Errorf("topic %s partition %d: %w", t.topic, p, err)
		}
		if t.exit && first >= end {
			continue
		}
		pc, err := consumer.ConsumePartition(t.topic, p, start)
		if err != nil {
			return fmt.Errorf("topic %s partition %d: %w", t.topic, p, err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer pc.Close()
			for {
				select {
				case <-ctx.Done():
					return
				case err := <-pc.Errors():
					errs <- err
					cancel()
					return
				case m := <-pc.Messages():
					if !t.print(m) {
						cancel()
						return
					}
					if t.exit && m.Offset+1 >= end {
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	select {
	case err := <-errs:
		return fmt.Errorf("tail %s: %w", t.topic, err)
	default:
		return nil
	}
}

// print writes one record; it returns false once the limit is reached.
func (t *tailing) print(m *sarama.ConsumerMessage) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.limit > 0 && t.printed >= t.limit {
		return false
	}
	t.printed++
	if t.json {
		fmt.Fprintln(t.g.stdout, string(recordJSON(m)))
	} else {
		fmt.Fprintln(t.g.stdout, recordText(m))
	}
	return t.limit == 0 || t.printed < t.limit
}

// recordText returns a record as one line of text: partition/offset, the
// key, the headers in record order (but watermill's message id) and the
// payload, escaped as recordTextHelp says.
func recordText(m *sarama.ConsumerMessage) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d/%d", m.Partition, m.Offset)
	if m.Key != nil {
		fmt.Fprintf(&b, " key=%s", quoteIfNeeded(string(m.Key)))
	}
	for _, h := range m.Headers {
		if string(h.Key) == watermillUUIDHeader {
			continue
		}
		b.WriteString(" " + quoteIfNeeded(string(h.Key)))
		if h.Value != nil {
			b.WriteString("=" + quoteIfNeeded(string(h.Value)))
		}
	}
	b.WriteString(" | ")
	b.WriteString(payloadText(m.Value))
	return b.String()
}
