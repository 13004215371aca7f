package cli

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/IBM/sarama"
	"github.com/spf13/cobra"

	"github.com/millrace/millrace/filters"
	"github.com/millrace/millrace/kafkaops"
)

func newQuarantineCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "quarantine",
		Short: "Inspect the records a pipeline quarantined",
		Long: `Inspect a pipeline's quarantine topic (<pipeline>.quarantine), where records go
that failed for good, with headers saying why: millrace-error, millrace-stage,
millrace-attempt, millrace-origin, millrace-first-failure, millrace-last-failure.

  quarantine ls    counts by stage and error, with first and last failure
  quarantine show  the records with their headers

Both read outside any consumer group and change nothing. To send records
back to their stage, see millrace replay quarantine.`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			return usageError{"quarantine needs a subcommand: ls or show (see millrace quarantine --help)"}
		},
	}
	cmd.AddCommand(newQuarantineLsCmd(g), newQuarantineShowCmd(g))
	return cmd
}

// selection picks quarantined records: by stage, error and time.
type selection struct {
	stage, match, since, until string
	re                         *regexp.Regexp
	from, to                   time.Time
}

func (s *selection) flags(cmd *cobra.Command, times bool) {
	f := cmd.Flags()
	f.StringVar(&s.stage, "stage", "", "only records quarantined by this stage")
	f.StringVar(&s.match, "match", "", "only records whose error (millrace-error) matches this regular expression")
	if times {
		f.StringVar(&s.since, "since", "", "only records quarantined at or after this time (RFC 3339, or UTC without a zone)")
		f.StringVar(&s.until, "until", "", "only records quarantined before this time")
	}
}

func (s *selection) compile() error {
	var err error
	if s.match != "" {
		if s.re, err = regexp.Compile(s.match); err != nil {
			return usageError{fmt.Sprintf("--match %q: %v", s.match, err)}
		}
	}
	if s.since != "" {
		if s.from, err = parseTime("since", s.since); err != nil {
			return err
		}
	}
	if s.until != "" {
		if s.to, err = parseTime("until", s.until); err != nil {
			return err
		}
	}
	return nil
}

func (s *selection) selects(m *sarama.ConsumerMessage) bool {
	switch {
	case s.stage != "" && header(m, filters.HeaderStage) != s.stage:
		return false
	case s.re != nil && !s.re.MatchString(header(m, filters.HeaderError)):
		return false
	case !s.from.IsZero() && m.Timestamp.Before(s.from):
		return false
	case !s.to.IsZero() && !m.Timestamp.Before(s.to):
		return false
	}
	return true
}

// header is the value of m's last header named key ("" if none), as
// Kafka's Headers.lastHeader reads it.
func header(m *sarama.ConsumerMessage, key string) string {
	for i := len(m.Headers) - 1; i >= 0; i-- {
		if string(m.Headers[i].Key) == key {
			return string(m.Headers[i].Value)
		}
	}
	return ""
}

// hasHeader reports whether m has a header named key.
func hasHeader(m *sarama.ConsumerMessage, key string) bool {
	for _, h := range m.Headers {
		if string(h.Key) == key {
			return true
		}
	}
	return false
}

// scanTopic calls fn on every record of topic from start (partition →
// first offset; absent: the oldest) up to the end each partition has when
// the scan begins, one partition after the other, in offset order. fn
// returning false stops the scan.
func scanTopic(ctx context.Context, client sarama.Client, topic string, start map[int32]int64,
	fn func(*sarama.ConsumerMessage) (bool, error)) error {
	if err := client.RefreshMetadata(topic); err != nil {
		return fmt.Errorf("topic %s: %w", topic, err)
	}
	parts, err := client.Partitions(topic)
	if err != nil {
		return fmt.Errorf("topic %s: %w", topic, err)
	}
	consumer, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		return fmt.Errorf("open consumer: %w", err)
	}
	defer consumer.Close()
	for _, p := range parts {
		end, err := client.GetOffset(topic, p, sarama.OffsetNewest)
		if err != nil {
			return fmt.Errorf("topic %s partition %d: %w", topic, p, err)
		}
		first, err := client.GetOffset(topic, p, sarama.OffsetOldest)
		if err != nil {
			return fmt.Errorf("topic %s partition %d: %w", topic, p, err)
		}
		if o, ok := start[p]; ok && o > first {
			first = o
		}
		if first >= end {
			continue
		}
		more, err := kafkaops.ReadRange(ctx, consumer, topic, p, first, end, fn)
		if err != nil || !more {
			return err
		}
	}
	return nil
}

// errorCount is a row of quarantine ls. Its strings are header values,
// which may hold any bytes (an exec filter's error quotes its stderr).
type errorCount struct {
	Stage        string
	Error        string
	Count        int
	FirstFailure string
	LastFailure  string
}

// MarshalJSON writes the row as {"stage", "error", "count",
// "first_failure", "last_failure"}, each string as records print theirs
// (recordJSONHelp): "error_base64" where it is not UTF-8.
func (c errorCount) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	appendTextField(&b, "stage", c.Stage)
	b.WriteByte(',')
	appendTextField(&b, "error", c.Error)
	b.WriteString(`,"count":` + strconv.Itoa(c.Count) + ",")
	appendTextField(&b, "first_failure", c.FirstFailure)
	b.WriteByte(',')
	appendTextField(&b, "last_failure", c.LastFailure)
	b.WriteByte('}')
	return b.Bytes(), nil
}

func newQuarantineLsCmd(g *globals) *cobra.Command {
	var (
		pipelineName string
		sel          selection
		asJSON       bool
		timeout      time.Duration
	)
	cmd := &cobra.Command{
		Use:   "ls --pipeline P [--stage S] [--match REGEX] [--json]",
		Short: "Count quarantined records by stage and error",
		Long: `Count the records in a pipeline's quarantine topic, grouped by the stage that
failed them and their error, with the first and last failure times.`,
		Example: `  millrace quarantine ls --pipeline orders
  millrace quarantine ls --pipeline orders --stage price --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := sel.compile(); err != nil {
				return err
			}
			_, pl, client, err := g.connect(cmd.Context(), pipelineName, timeout)
			if err != nil {
				return err
			}
			defer client.Close()
			counts := map[[2]string]*errorCount{}
			total := 0
			err = scanTopic(cmd.Context(), client, pl.Quarantine, nil, func(m *sarama.ConsumerMessage) (bool, error) {
				if !sel.selects(m) {
					return true, nil
				}
				total++
				k := [2]string{header(m, filters.HeaderStage), header(m, filters.HeaderError)}
				c := counts[k]
				if c == nil {
					c = &errorCount{Stage: k[0], Error: k[1]}
					counts[k] = c
				}
				c.Count++
				first, last := header(m, filters.HeaderFirstFailure), header(m, filters.HeaderLastFailure)
				if first == "" {
					first = m.Timestamp.UTC().Format(time.RFC3339Nano)
				}
				if last == "" {
					last = m.Timestamp.UTC().Format(time.RFC3339Nano)
				}
				if c.FirstFailure == "" || earlier(first, c.FirstFailure) {
					c.FirstFailure = first
				}
				if c.LastFailure == "" || earlier(c.LastFailure, last) {
					c.LastFailure = last
				}
				return true, nil
			})
			if err != nil {
				return err
			}
			rows := make([]errorCount, 0, len(counts))
			for _, c := range counts {
				rows = append(rows, *c)
			}
			sort.Slice(rows, func(i, j int) bool {
				if rows[i].Stage != rows[j].Stage {
					return rows[i].Stage < rows[j].Stage
				}
				if rows[i].Count != rows[j].Count {
					return rows[i].Count > rows[j].Count
				}
				return rows[i].Error < rows[j].Error
			})
			if asJSON {
				return writeJSON(g.stdout, map[string]any{"pipeline": pl.Name, "topic": pl.Quarantine, "total": total, "errors": rows})
			}
			printCounts(g.stdout, pl.Quarantine, total, rows)
			return nil
		},
	}
	cmd.Flags().StringVar(&pipelineName, "pipeline", "", "pipeline whose quarantine to read (required)")
	sel.flags(cmd, false)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.Flags().DurationVar(&timeout, "connect-timeout", 10*time.Second, "how long to wait for the brokers")
	_ = cmd.MarkFlagRequired("pipeline")
	return cmd
}

// earlier compares two RFC 3339 times; unparsable ones compare as text.
func earlier(a, b string) bool {
	ta, ea := time.Parse(time.RFC3339Nano, a)
	tb, eb := time.Parse(time.RFC3339Nano, b)
	if ea != nil || eb != nil {
		return a < b
	}
	return ta.Before(tb)
}

func printCounts(w io.Writer, topic string, total int, rows []errorCount) {
	fmt.Fprintf(w, "%s: %d quarantined %s\n", topic, total, plural(total, "record"))
	if total == 0 {
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "STAGE\tCOUNT\tFIRST FAILURE\tLAST FAILURE\tERROR")
	for _, r := range rows {
		msg := strings.ReplaceAll(r.Error, "\n", " ")
		if len(msg) > 120 {
			cut := 117
			for cut > 0 && !utf8.RuneStart(msg[cut]) { // not inside a character
				cut--
			}
			msg = msg[:cut] + "..."
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\n", payloadText([]byte(r.Stage)), r.Count,
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
	var (
		pipelineName string
		sel          selection
		limit        int
		asJSON       bool
		timeout      time.Duration
	)
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
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := sel.compile(); err != nil {
				return err
			}
			_, pl, client, err := g.connect(cmd.Context(), pipelineName, timeout)
			if err != nil {
				return err
			}
			defer client.Close()
			shown := 0
			err = scanTopic(cmd.Context(), client, pl.Quarantine, nil, func(m *sarama.ConsumerMessage) (bool, error) {
				if limit > 0 && shown >= limit {
					return false, nil
				}
				if !sel.selects(m) {
					return true, nil
				}
				shown++
				if asJSON {
					fmt.Fprintln(g.stdout, string(recordJSON(m)))
				} else {
					printQuarantined(g.stdout, m)
				}
				return true, nil
			})
			if err != nil {
				return err
			}
			if !asJSON {
				fmt.Fprintf(g.stdout, "%d %s shown\n", shown, plural(shown, "record"))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&pipelineName, "pipeline", "", "pipeline whose quarantine to read (required)")
	sel.flags(cmd, false)
	cmd.Flags().IntVarP(&limit, "limit", "n", 0, "print at most this many records (0: all)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON object per record, every byte kept (see above)")
	cmd.Flags().DurationVar(&timeout, "connect-timeout", 10*time.Second, "how long to wait for the brokers")
	_ = cmd.MarkFlagRequired("pipeline")
	return cmd
}

// printQuarantined writes a quarantined record as text: where it is, its
// key, its headers in record order (but watermill's message id) and its
// payload, escaped as recordTextHelp says.
func printQuarantined(w io.Writer, m *sarama.ConsumerMessage) {
	fmt.Fprintf(w, "%s %d/%d", m.Topic, m.Partition, m.Offset)
	if m.Key != nil {
		fmt.Fprintf(w, " key=%s", quoteIfNeeded(string(m.Key)))
	}
	fmt.Fprintf(w, " at %s\n", m.Timestamp.UTC().Format(time.RFC3339))
	for _, h := range m.Headers {
		if string(h.Key) != watermillUUIDHeader {
			fmt.Fprintf(w, "  %s: %s\n", quoteIfNeeded(string(h.Key)), payloadText(h.Value))
		}
	}
	fmt.Fprintf(w, "  payload: %s\n\n", payloadText(m.Value))
}
