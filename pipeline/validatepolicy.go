package pipeline

import (
	"fmt"
	"strings"
	"time"
)

// Bounds of the failure-handling and priority settings.
const (
	maxAttempts       = 1000
	minBackoff        = time.Millisecond
	maxMultiplier     = 100
	maxTiers          = 20
	minTier, maxTier  = 10 * time.Millisecond, 7 * 24 * time.Hour
	maxTimeout        = 24 * time.Hour
	maxDedupWindow    = 30 * 24 * time.Hour
	maxDedupKeys      = 100_000_000
	maxPriorityWeight = 1000
)

// validatePolicies checks the retry, ordering and timeout a level (the
// defaults, a pipeline or a stage) sets; ps are the level's positions.
func validatePolicies(p *problems, ps Positions, r Retry, o Ordering, timeout time.Duration) {
	if ps.Set("retry") {
		r.validate(p)
	}
	if ps.Set("ordering") && o != OrderByKey && o != OrderNone {
		p.add(ps.Of("ordering"), "ordering %q: want key (records of one key in order) or none", o)
	}
	if ps.Set("timeout") {
		checkDuration(p, ps, "timeout", timeout, 0, maxTimeout, " (no limit)")
	}
}

func (r Retry) validate(p *problems) {
	if r.Set("attempts") {
		checkRange(p, r.Positions, "attempts", r.Attempts, 1, maxAttempts)
	}
	if r.Set("backoff") {
		r.Backoff.validate(p)
	}
	if !r.Set("tiers") {
		return
	}
	if len(r.Tiers) == 0 || len(r.Tiers) > maxTiers {
		p.add(r.Of("tiers"), "tiers: list 1 to %d delays (such as [5s, 1m, 10m]), got %d", maxTiers, len(r.Tiers))
		return
	}
	for i, d := range r.Tiers {
		if d < minTier || d > maxTier {
			p.add(r.Item("tiers", i), "retry tier %d must be between %s and %s, got %s",
				i+1, formatDuration(minTier), formatDuration(maxTier), formatDuration(d))
		}
	}
}

func (b Backoff) validate(p *problems) {
	bp := b.backoffPlan()
	if b.Set("initial") && bp.Initial < minBackoff {
		p.add(b.Of("initial"), "initial must be at least %s, got %s", formatDuration(minBackoff), formatDuration(bp.Initial))
	} else if (b.Set("initial") || b.Set("max")) && bp.Max < bp.Initial {
		at, initial := b.Of("max"), formatDuration(bp.Initial)
		if !b.Set("initial") {
			initial += " (the default initial)"
		} else if !b.Set("max") {
			at = b.Of("initial")
		}
		p.add(at, "backoff max %s is less than initial %s", formatDuration(bp.Max), initial)
	}
	if b.Set("multiplier") && (bp.Multiplier < 1 || bp.Multiplier > maxMultiplier) {
		p.add(b.Of("multiplier"), "multiplier must be between 1 and %d, got %g", maxMultiplier, bp.Multiplier)
	}
	if b.Set("jitter") && (bp.Jitter < 0 || bp.Jitter > 1) {
		p.add(b.Of("jitter"), "jitter must be between 0 and 1 (a fraction of the delay), got %g", bp.Jitter)
	}
}

func (d *Dedup) validate(p *problems, where string) {
	if !d.decoded() {
		return
	}
	if !d.Set("key") {
		p.add(d.Self, "%s: dedup: missing key \"key\" (a jq expression such as .order_id, or header:NAME)", where)
	} else if keyOf, err := CompileKey(d.Key); err != nil {
		p.add(d.Of("key"), "%s: dedup key: %v", where, err)
	} else {
		d.keyOf = keyOf
	}
	if d.Set("window") && (d.Window <= 0 || d.Window > maxDedupWindow) {
		p.add(d.Of("window"), "window must be more than 0s and at most %s, got %s", formatDuration(maxDedupWindow), formatDuration(d.Window))
	}
	if d.Set("max_keys") {
		checkRange(p, d.Positions, "max_keys", d.MaxKeys, 1, maxDedupKeys)
	}
}

// validatePriority checks a pipeline's priority list.
func (pl *Pipeline) validatePriority(p *problems, where string) {
	if !pl.Set("priority") {
		return
	}
	if len(pl.Priority) == 0 {
		p.add(pl.Of("priority"), "%s: priority lists no topics: list at least one ({topic: T, weight: W}) or remove the key", where)
		return
	}
	topics := map[string]Pos{}
	names := map[string]Pos{}
	listsInput := false
	for _, pt := range pl.Priority {
		listsInput = listsInput || pt.decoded() && pt.Topic == pl.Input
	}
	if !listsInput {
		names[pl.Input] = pl.Of("input")
	}
	for i := range pl.Priority {
		pt := &pl.Priority[i]
		if !pt.decoded() {
			continue
		}
		entry := fmt.Sprintf("%s priority entry %d", where, i+1)
		checkTopic(p, pt.Positions, entry, "topic", pt.Topic, true)
		if pt.Set("weight") {
			checkRange(p, pt.Positions, "weight", pt.Weight, 1, maxPriorityWeight)
		}
		if pt.Set("name") && !NamePattern.MatchString(pt.Name) {
			p.add(pt.Of("name"), "%s: name %q must be lowercase letters and digits, separated by single '.', '_' or '-'", entry, pt.Name)
		}
		if pt.Topic == "" {
			continue
		}
		switch prev, dup := topics[pt.Topic]; {
		case dup:
			p.add(pt.Of("topic"), "%s: topic %q is listed twice (first at line %d)", entry, pt.Topic, prev.Line)
		case pt.Topic == pl.Output:
			p.add(pt.Of("topic"), "%s: topic %q is the pipeline's output, records would loop forever", entry, pt.Topic)
		}
		topics[pt.Topic] = pt.Of("topic")
		name, at := pt.Name, pt.Of("name")
		if !pt.Set("name") {
			name = pt.Topic
		}
		switch prev, dup := names[name]; {
		case dup && !listsInput && name == pl.Input && prev == pl.Of("input"):
			p.add(at, "%s: name %q is taken by the input topic (an entry of weight 1 unless listed): pick another name", entry, name)
		case dup:
			p.add(at, "%s: name %q is used twice (first at line %d)", entry, name, prev.Line)
		}
		names[name] = at
	}
	// `produce --priority` takes a name or a topic: a name may not be
	// another entry's topic.
	for i, pt := range pl.Priority {
		if prev, ok := topics[pt.Name]; ok && pt.Set("name") && pt.Name != pt.Topic {
			p.add(pt.Of("name"), "%s priority entry %d: name %q is the topic of another entry (line %d): pick another name",
				where, i+1, pt.Name, prev.Line)
		}
	}
}

// checkDuration reports d outside lo..hi; loNote follows lo in the message.
func checkDuration(p *problems, ps Positions, key string, d, lo, hi time.Duration, loNote string) {
	if d < lo || d > hi {
		p.add(ps.Of(key), "%s must be between %s%s and %s, got %s", key, formatDuration(lo), loNote, formatDuration(hi), formatDuration(d))
	}
}

// formatDuration writes d as a user would: 168h rather than 168h0m0s.
func formatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
