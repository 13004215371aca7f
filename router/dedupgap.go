package router

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/IBM/sarama"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/millrace/millrace/filters"
	"github.com/millrace/millrace/kafkaops"
	"github.com/millrace/millrace/transport"
)

// A dedup stage records a key after the record's outputs are acknowledged
// (never before: that could lose the record). A crash between the two
// leaves outputs in Kafka whose key is not recorded. To find them, the
// stage marks each output with HeaderDedup ("stage partition i n key"), and
// when it is assigned partitions it reads its output topic from a little
// before the newest key recorded for them: a key all n of whose outputs are
// there is recorded now, so the redelivered record is skipped. Missing one
// output, the record runs again (a duplicate at worst, never a loss).

// dedupGapMargin is how long before the newest recorded key the scan
// starts: a bound on the time between a record's outputs being acked and
// its key being recorded, and on clock differences.
const dedupGapMargin = time.Minute

// dedupMark returns the HeaderDedup value of output i of n of msg, or "".
func (s *stage) dedupMark(msg *message.Message, i, n int) string {
	h := stateOf(msg)
	if h == nil || !h.keyed {
		return ""
	}
	key := h.dedupKey
	return fmt.Sprintf("%s %d %d %d %s", s.plan.Name, partitionOf(msg), i, n, key)
}

// findPublished runs recoverDedupGap for every partition the stage holds,
// from a margin before since (when a publish, or recording a key, failed),
// unless a search that began after since already covered it: after a
// broker outage many records wait for this, and one search serves them.
func (s *stage) findPublished(ctx context.Context, since time.Time) error {
	s.gapMu.Lock()
	defer s.gapMu.Unlock()
	if s.gapSearched.After(since) {
		return nil
	}
	start := time.Now()
	if err := s.recoverDedupGap(ctx, s.client, s.dedup.held(), since.Add(-dedupGapMargin)); err != nil {
		return fmt.Errorf("dedup: look for outputs published before a failure: %w", err)
	}
	s.gapSearched = start
	return nil
}

// recoverDedupGap records the keys of partitions ps whose outputs are all
// in the output topic though the key was not recorded (see above), reading
// the output topic from time from on; with from zero, from a margin before
// the newest key restored for ps.
func (s *stage) recoverDedupGap(ctx context.Context, client sarama.Client, ps []int32, from time.Time) error {
	if s.dedup == nil || s.plan.Output == "" || len(ps) == 0 {
		return nil
	}
	if from.IsZero() {
		for _, p := range ps {
			if t := s.dedup.lastRecorded(p); !t.IsZero() && (from.IsZero() || t.Before(from)) {
				from = t
			}
		}
		if from.IsZero() {
			from = time.Now()
		}
		from = from.Add(-dedupGapMargin)
	}
	marks := dedupMarks{stage: s.plan.Name, ps: ps, outs: map[markedRecord]map[int]bool{}, count: map[markedRecord]int{}}
	if err := marks.scan(ctx, client, s.plan.Output, from); err != nil {
		return err
	}
	recovered := 0
	for r, got := range marks.outs {
		if len(got) < marks.count[r] || s.dedup.seen(r.p, r.key) {
			continue
		}
		if err := s.dedup.record(r.p, r.key); err != nil {
			return err
		}
		recovered++
	}
	if recovered > 0 {
		s.log.Info("dedup: recorded keys whose outputs were published before a crash", "keys", recovered,
			"scanned", marks.scanned, "output", s.plan.Output, "since", from.UTC().Format(time.RFC3339))
	}
	return nil
}

// markedRecord is an input record of a dedup stage, by its partition and
// dedup key, as the marks on its outputs name it.
type markedRecord struct {
	p   int32
	key string
}

// dedupMarks collects the HeaderDedup marks of a stage's outputs: which of
// each record's outputs are there (by index) and how many it had.
type dedupMarks struct {
	stage   string
	ps      []int32 // input partitions whose records count
	outs    map[markedRecord]map[int]bool
	count   map[markedRecord]int
	scanned int
}

// scan reads every partition of topic from the first record at or after
// from up to its end now, collecting marks.
func (dm *dedupMarks) scan(ctx context.Context, client sarama.Client, topic string, from time.Time) error {
	parts, err := client.Partitions(topic)
	if err != nil {
		return fmt.Errorf("dedup: partitions of %s: %w", topic, err)
	}
	consumer, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		return err
	}
	defer consumer.Close()
	for _, q := range parts {
		start, err := kafkaops.GetOffset(ctx, client, topic, q, from.UnixMilli())
		if err != nil {
			return fmt.Errorf("dedup: offset of %s/%d at %s: %w", topic, q, from, err)
		}
		end, err := kafkaops.GetOffset(ctx, client, topic, q, sarama.OffsetNewest)
		if err != nil {
			return fmt.Errorf("dedup: end of %s/%d: %w", topic, q, err)
		}
		if start < 0 {
			continue
		}
		if err := kafkaops.ReadEach(ctx, consumer, topic, q, start, end, dm.add); err != nil {
			return fmt.Errorf("dedup: scan %s for outputs of unrecorded keys: %w", topic, err)
		}
	}
	return nil
}

// add notes the mark of output record m, if it has one of this stage's.
func (dm *dedupMarks) add(m *sarama.ConsumerMessage) {
	dm.scanned++
	v, ok := transport.LastHeader(m, filters.HeaderDedup)
	if !ok {
		return
	}
	f := strings.SplitN(string(v), " ", 5)
	if len(f) != 5 || f[0] != dm.stage {
		return
	}
	p, err1 := strconv.Atoi(f[1])
	i, err2 := strconv.Atoi(f[2])
	n, err3 := strconv.Atoi(f[3])
	if err1 != nil || err2 != nil || err3 != nil || !slices.Contains(dm.ps, int32(p)) {
		return
	}
	r := markedRecord{int32(p), f[4]}
	if dm.outs[r] == nil {
		dm.outs[r] = map[int]bool{}
	}
	dm.outs[r][i] = true
	dm.count[r] = n
}
