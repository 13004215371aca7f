package pipeline

import (
	"fmt"
	"time"

	"github.com/millrace/millrace/internal/yamlscalar"
)

// Bounds of the failure-handling and priority settings.
const (
	maxAttempts      = 1000
	minBackoff       = time.Millisecond
	maxMultiplier    = 100
	maxTiers         = 20
	minTier, maxTier = 10 * time.Millisecond, 7 * 24 * time.Hour
	maxTimeout       = 24 * time.Hour
	// Kafka's default group.min.session.timeout.ms and
	// group.max.session.timeout.ms: a broker refuses a session timeout
	// outside them.
	minSessionTimeout, maxSessionTimeout     = 6 * time.Second, 30 * time.Minute
	minRebalanceTimeout, maxRebalanceTimeout = time.Second, 24 * time.Hour
	maxDedupWindow                           = 30 * 24 * time.Hour
	maxDedupKeys                             = 100_000_000
	maxPriorityWeight                        = 1000
)

// validatePolicies checks the policies a level (the defaults, a pipeline or
// a stage) sets.
func validatePolicies(p *problems, l policyLevel) {
	ps := l.ps
	if ps.Set("retry") {
		l.retry.validate(p)
	}
	if ps.Set("ordering") && l.ordering != OrderByKey && l.ordering != OrderNone {
		p.add(ps.Of("ordering"), "ordering %s: want key (records of one key in order) or none", p.quoted(ps.Of("ordering"), string(l.ordering)))
	}
	if ps.Set("timeout") {
		checkDuration(p, ps, "timeout", l.timeout, 0, maxTimeout, " (no limit)", "")
	}
	if ps.Set("session_timeout") {
		checkDuration(p, ps, "session_timeout", l.sessionTimeout, minSessionTimeout, maxSessionTimeout, "",
			" (what Kafka brokers accept by default: group.min.session.timeout.ms and group.max.session.timeout.ms)")
	}
	if ps.Set("rebalance_timeout") {
		checkDuration(p, ps, "rebalance_timeout", l.rebalanceTimeout, minRebalanceTimeout, maxRebalanceTimeout, "", "")
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
		if at := r.Item("tiers", i); d < minTier || d > maxTier {
			p.add(at, "retry tier %d must be between %s and %s, got %s",
				i+1, formatDuration(minTier), formatDuration(maxTier), p.shown(at, formatDuration(d)))
		}
	}
}

func (b Backoff) validate(p *problems) {
	bp := b.backoffPlan()
	initial, max := p.shown(b.Of("initial"), formatDuration(bp.Initial)), p.shown(b.Of("max"), formatDuration(bp.Max))
	if b.Set("initial") && bp.Initial < minBackoff {
		p.add(b.Of("initial"), "initial must be at least %s, got %s", formatDuration(minBackoff), initial)
	} else if (b.Set("initial") || b.Set("max")) && bp.Max < bp.Initial {
		at := b.Of("max")
		if !b.Set("initial") {
			initial += " (the default initial)"
		} else if !b.Set("max") {
			at, max = b.Of("initial"), max+" (the default max)"
		}
		p.add(at, "backoff max %s is less than initial %s", max, initial)
	}
	if b.Set("multiplier") && (bp.Multiplier < 1 || bp.Multiplier > maxMultiplier) {
		p.add(b.Of("multiplier"), "multiplier must be between 1 and %d, got %s", maxMultiplier, p.shownFloat(b.Of("multiplier"), bp.Multiplier))
	}
	if b.Set("jitter") && (bp.Jitter < 0 || bp.Jitter > 1) {
		p.add(b.Of("jitter"), "jitter must be between 0 and 1 (a fraction of the delay), got %s", p.shownFloat(b.Of("jitter"), bp.Jitter))
	}
}

func (d *Dedup) validate(p *problems, where string) {
	if !d.decoded() {
		return
	}
	if !d.Set("key") {
		p.add(d.Self, "%s: dedup: missing key \"key\" (a jq expression such as .order_id, or header:NAME)", where)
	} else if keyOf, err := CompileKey(d.Key); err != nil {
		p.add(d.Of("key"), "%s: dedup key: %s", where, scrubbed(err.Error(), p.sourcesAt(d.Of("key"))))
	} else {
		d.keyOf = keyOf
	}
	if d.Set("window") && (d.Window <= 0 || d.Window > maxDedupWindow) {
		p.add(d.Of("window"), "window must be more than 0s and at most %s, got %s",
			formatDuration(maxDedupWindow), p.shown(d.Of("window"), formatDuration(d.Window)))
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
			p.add(pt.Of("name"), "%s: name %s must be lowercase letters and digits, separated by single '.', '_' or '-'",
				entry, p.quoted(pt.Of("name"), pt.Name))
		}
		if pt.Topic == "" {
			continue
		}
		topic := p.quoted(pt.Of("topic"), pt.Topic)
		switch prev, dup := topics[pt.Topic]; {
		case dup:
			p.add(pt.Of("topic"), "%s: topic %s is listed twice (first at line %d)", entry, topic, prev.Line)
		case pt.Topic == pl.Output:
			p.add(pt.Of("topic"), "%s: topic %s is the pipeline's output, records would loop forever", entry, topic)
		}
		topics[pt.Topic] = pt.Of("topic")
		name, at, shown := pt.Name, pt.Of("name"), p.quoted(pt.Of("name"), pt.Name)
		if !pt.Set("name") {
			name, shown = pt.Topic, topic
		}
		switch prev, dup := names[name]; {
		case dup && !listsInput && name == pl.Input && prev == pl.Of("input"):
			p.add(at, "%s: name %s is taken by the input topic (an entry of weight 1 unless listed): pick another name", entry, shown)
		case dup:
			p.add(at, "%s: name %s is used twice (first at line %d)", entry, shown, prev.Line)
		}
		names[name] = at
	}
	// `produce --priority` takes a name or a topic: a name may not be
	// another entry's topic.
	for i, pt := range pl.Priority {
		if prev, ok := topics[pt.Name]; ok && pt.Set("name") && pt.Name != pt.Topic {
			p.add(pt.Of("name"), "%s priority entry %d: name %s is the topic of another entry (line %d): pick another name",
				where, i+1, p.quoted(pt.Of("name"), pt.Name), prev.Line)
		}
	}
}

// checkDuration reports d outside lo..hi; loNote follows lo in the
// message, hiNote hi.
func checkDuration(p *problems, ps Positions, key string, d, lo, hi time.Duration, loNote, hiNote string) {
	if d < lo || d > hi {
		p.add(ps.Of(key), "%s must be between %s%s and %s%s, got %s",
			key, formatDuration(lo), loNote, formatDuration(hi), hiNote, p.shown(ps.Of(key), formatDuration(d)))
	}
}

// FormatDuration writes d as a user would: 168h rather than 168h0m0s
// (time.Duration.String without zero minutes and seconds at its end).
func FormatDuration(d time.Duration) string { return formatDuration(d) }

// formatDuration is FormatDuration.
func formatDuration(d time.Duration) string { return yamlscalar.FormatDuration(d) }
