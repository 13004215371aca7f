package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/IBM/sarama"
	"github.com/spf13/cobra"

	"github.com/millrace/millrace/router"
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
It reads outside any consumer group, so it never moves a stage's offsets.`,
		Example: `  millrace tail orders.confirmed --from-beginning
  millrace tail orders.confirmed --from-beginning --exit --json | jq .payload
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
			client, err := router.ConnectTimeout(ctx, brokers, router.NewSaramaConfig(""), timeout)
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
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON object per record")
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

func recordJSON(m *sarama.ConsumerMessage) []byte {
	headers := map[string]string{}
	for _, h := range m.Headers {
		headers[string(h.Key)] = string(h.Value)
	}
	var payload any = string(m.Value)
	if json.Valid(m.Value) {
		payload = json.RawMessage(m.Value)
	}
	var key any
	if m.Key != nil {
		key = string(m.Key)
	}
	out, _ := json.Marshal(map[string]any{
		"topic": m.Topic, "partition": m.Partition, "offset": m.Offset,
		"timestamp": m.Timestamp.UTC().Format(time.RFC3339Nano),
		"key":       key, "headers": headers, "payload": payload,
	})
	return out
}

func recordText(m *sarama.ConsumerMessage) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d/%d", m.Partition, m.Offset)
	if m.Key != nil {
		fmt.Fprintf(&b, " key=%s", quoteIfNeeded(string(m.Key)))
	}
	hs := make([]string, 0, len(m.Headers))
	for _, h := range m.Headers {
		if string(h.Key) != "_watermill_message_uuid" {
			hs = append(hs, string(h.Key)+"="+quoteIfNeeded(string(h.Value)))
		}
	}
	sort.Strings(hs)
	for _, h := range hs {
		b.WriteString(" " + h)
	}
	b.WriteString(" | ")
	b.Write(m.Value)
	return b.String()
}

func quoteIfNeeded(s string) string {
	if s == "" || strings.ContainsAny(s, " \t\n\"|=") {
		return strconv.Quote(s)
	}
	return s
}
