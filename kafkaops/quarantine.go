package kafkaops

import (
	"context"
	"fmt"
	"regexp"
	"sort"
	"time"

	"github.com/IBM/sarama"

	"github.com/millrace/millrace/filters"
	"github.com/millrace/millrace/transport"
)

// QuarantineSelection picks quarantined records by the stage that failed
// them, their error and when they were quarantined. The zero value picks
// every record.
type QuarantineSelection struct {
	// Stage, if set, picks records whose millrace-stage is Stage.
	Stage string
	// Error, if set, picks records whose millrace-error it matches.
	Error *regexp.Regexp
	// Since and Until, where not zero, pick records whose Kafka timestamp
	// (the time they were quarantined) is in [Since, Until).
	Since, Until time.Time
}

// Selects reports whether s picks m. Headers are read as Kafka's
// Headers.lastHeader does: of a repeated name, the last value.
func (s QuarantineSelection) Selects(m *Record) bool {
	switch {
	case s.Stage != "" && header(m, filters.HeaderStage) != s.Stage:
		return false
	case s.Error != nil && !s.Error.MatchString(header(m, filters.HeaderError)):
		return false
	case !s.Since.IsZero() && m.Timestamp.Before(s.Since):
		return false
	case !s.Until.IsZero() && !m.Timestamp.Before(s.Until):
		return false
	}
	return true
}

// header is the value of m's last header named name, "" if none.
func header(m *Record, name string) string {
	v, _ := transport.LastHeader(m, name)
	return string(v)
}

// QuarantineOptions says which quarantined records to read.
type QuarantineOptions struct {
	Cluster
	// Topic is the quarantine topic ([pipeline.QuarantineTopic]).
	Topic  string
	Select QuarantineSelection
	// Replayed is the progress topic of [ReplayQuarantine]
	// ([pipeline.ReplayedTopic]): the records it lists are counted as
	// replayed. Empty, or a topic that does not exist: none are.
	Replayed string
}

// ErrorCount counts the quarantined records of one stage and error. Its
// strings are header values, which may hold any bytes (an exec filter's
// error quotes the program's stderr).
type ErrorCount struct {
	Stage, Error string
	Count        int
	// Replayed is how many of them [ReplayQuarantine] sent back to their
	// stage (they stay in the quarantine topic, which is a log).
	Replayed int
	// FirstFailure and LastFailure are the earliest millrace-first-failure
	// and the latest millrace-last-failure (RFC 3339) of the records, each
	// the record's timestamp where the header is missing.
	FirstFailure, LastFailure string
}

// QuarantineCounts is what [CountQuarantine] found.
type QuarantineCounts struct {
	// Total is how many records were selected; Replayed how many of
	// them [ReplayQuarantine] sent back.
	Total, Replayed int
	// Errors is sorted by stage, then by count (highest first), then by
	// error.
	Errors []ErrorCount
}

// CountQuarantine reads the whole quarantine topic, from the oldest record
// of each partition to its end, and counts the selected records by stage
// and error. It changes nothing and joins no consumer group.
func CountQuarantine(ctx context.Context, opts QuarantineOptions) (QuarantineCounts, error) {
	client, err := opts.Connect(ctx)
	if err != nil {
		return QuarantineCounts{}, err
	}
	defer client.Close()
	replayed, err := readReplayed(ctx, client, opts.Replayed)
	if err != nil {
		return QuarantineCounts{}, err
	}
	counts := map[[2]string]*ErrorCount{}
	var out QuarantineCounts
	err = scan(ctx, client, opts.Topic, nil, func(m *Record) (bool, error) {
		if !opts.Select.Selects(m) {
			return true, nil
		}
		out.Total++
		k := [2]string{header(m, filters.HeaderStage), header(m, filters.HeaderError)}
		c := counts[k]
		if c == nil {
			c = &ErrorCount{Stage: k[0], Error: k[1]}
			counts[k] = c
		}
		c.Count++
		if replayed[replayID(m)] {
			c.Replayed++
			out.Replayed++
		}
		stamp := m.Timestamp.UTC().Format(time.RFC3339Nano)
		first, last := header(m, filters.HeaderFirstFailure), header(m, filters.HeaderLastFailure)
		if first == "" {
			first = stamp
		}
		if last == "" {
			last = stamp
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
		return QuarantineCounts{}, err
	}
	out.Errors = make([]ErrorCount, 0, len(counts))
	for _, c := range counts {
		out.Errors = append(out.Errors, *c)
	}
	sort.Slice(out.Errors, func(i, j int) bool {
		a, b := out.Errors[i], out.Errors[j]
		if a.Stage != b.Stage {
			return a.Stage < b.Stage
		}
		if a.Count != b.Count {
			return a.Count > b.Count
		}
		return a.Error < b.Error
	})
	return out, nil
}

// replayID is how the progress topic of [ReplayQuarantine] names a
// quarantined record: "partition/offset" in the quarantine topic.
func replayID(m *Record) string { return fmt.Sprintf("%d/%d", m.Partition, m.Offset) }

// readReplayed reads the progress topic of [ReplayQuarantine]: the ids
// (replayID) of the records it sent. A topic that does not exist (or
// "") lists none.
func readReplayed(ctx context.Context, client sarama.Client, topic string) (map[string]bool, error) {
	if topic == "" {
		return map[string]bool{}, nil
	}
	_, existing, err := listTopics(client)
	if err != nil {
		return nil, err
	}
	if _, ok := existing[topic]; !ok {
		return map[string]bool{}, nil
	}
	return scanReplayed(ctx, client, topic)
}

// scanReplayed reads the progress topic of [ReplayQuarantine], which
// exists.
func scanReplayed(ctx context.Context, client sarama.Client, topic string) (map[string]bool, error) {
	replayed := map[string]bool{}
	err := scan(ctx, client, topic, nil, func(m *Record) (bool, error) {
		replayed[string(m.Key)] = m.Value != nil
		return true, nil
	})
	return replayed, err
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

// ShowQuarantine hands the selected records of the quarantine topic to fn,
// partition by partition, oldest first, at most limit of them (0: all),
// and returns how many it handed out. It changes nothing and joins no
// consumer group.
func ShowQuarantine(ctx context.Context, opts QuarantineOptions, limit int, fn func(*Record)) (int, error) {
	client, err := opts.Connect(ctx)
	if err != nil {
		return 0, err
	}
	defer client.Close()
	shown := 0
	err = scan(ctx, client, opts.Topic, nil, func(m *Record) (bool, error) {
		if limit > 0 && shown >= limit {
			return false, nil
		}
		if opts.Select.Selects(m) {
			shown++
			fn(m)
		}
		return true, nil
	})
	return shown, err
}
