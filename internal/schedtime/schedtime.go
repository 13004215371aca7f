// Package schedtime computes the fire times of millrace's schedules
// (pipelines.yaml schedules: with cron: or every:).
//
// # cron:
//
// ParseCron takes a standard 5-field cron spec or a macro and is parsed by
// github.com/robfig/cron/v3. Away from daylight-saving changes its fire times
// are exactly robfig's (SpecSchedule.Next). Around a change robfig walks
// absolute time, so a time that does not exist never fires and a time that
// exists twice fires twice: in Europe/Berlin, 0 2 * * * does not fire at all
// on 2026-03-29 (clocks go from 02:00 CET to 03:00 CEST) and fires twice on
// 2026-10-25 (02:00 CEST, then 02:00 CET again after clocks go back from
// 03:00 CEST). millrace corrects this with the rules Vixie cron (the
// classic Unix cron daemon) applies to DST changes, so that a daily job
// fires once on both days:
//
//  1. A time that does not exist (in a spring-forward gap): if the spec
//     matches any wall-clock minute inside the gap, the schedule fires once at
//     the instant the gap ends, instead of not at all. In Europe/Berlin both
//     0 2 * * * and 30 2 * * * fire at 2026-03-29T03:00:00+02:00. Several
//     matching minutes in one gap give one fire, and so does a spec that also
//     matches the instant the gap ends (0 * * * * fires once at 03:00).
//  2. A time that exists twice (in a fall-back overlap): the schedule fires
//     once, at the first occurrence (the earlier instant, still in summer
//     time); the second occurrence is skipped. 30 2 * * * fires at
//     2026-10-25T02:30:00+02:00 and not at 2026-10-25T02:30:00+01:00. The
//     exception is a spec whose hour field matches every hour of the day
//     (0 * * * *, */15 * * * *, @hourly): it fires in both passes of the
//     repeated wall-clock time, as Vixie cron runs such wildcard jobs, so
//     0 * * * * fires at 02:00+02:00 and again at 02:00+01:00.
//
// Gaps and overlaps are found with the time package's zone data, whatever
// their length (30 minutes in Australia/Lord_Howe, an hour in most zones).
// Every other time fires as robfig computes it, except just after a
// 30-minute change, where robfig misses a day (in Australia/Lord_Howe its
// 0 12 * * * skips 2026-10-04): there the wall-clock times that exist once
// fire as they match.
//
// # every:
//
// Every fires at the multiples of an interval since the Unix epoch, in
// absolute time: time zones and DST do not apply.
package schedtime

import (
	"fmt"
	"math/bits"
	"strings"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/millrace/millrace/internal/yamlscalar"
)

// Timing is when a schedule fires. Implementations are safe for concurrent use.
type Timing interface {
	// Next returns the first fire time strictly after t (the same instant whatever t's location);
	// the zero time if there is none (a cron spec that can never match, e.g. 30 Feb).
	Next(t time.Time) time.Time
	// String describes the timing for people: "cron 0 2 * * * (Europe/Berlin)", "every 15m".
	String() string
}

// parser is robfig's standard 5-field parser with macros; it also accepts
// "@every" and "TZ=" prefixes, which ParseCron refuses before calling it.
var parser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// ParseCron parses a standard 5-field cron spec (minute hour day-of-month month day-of-week,
// with names like MON/JAN, ranges, lists, steps) or a macro (@yearly @annually @monthly @weekly
// @daily @midnight @hourly), in location loc (nil = UTC). It uses robfig/cron/v3's parser
// (cron.NewParser(cron.Minute|cron.Hour|cron.Dom|cron.Month|cron.Dow|cron.Descriptor)), never
// a hand-written one.
//
// The error, `invalid cron spec "<spec>": <advice>[: <parser's detail>]`, says what to
// write instead. ParseCron refuses
//   - "@every <d>": "use every: instead of cron: for an interval";
//   - a "CRON_TZ=" or "TZ=" prefix: "use timezone: instead of CRON_TZ=";
//   - a spec with other than 5 fields, such as a 6-field spec with seconds: "cron: takes 5
//     fields (minute hour day-of-month month day-of-week), without seconds, and every: takes
//     intervals";
//   - a field out of range or unreadable: the fields and their ranges;
//   - an unknown macro: the macros.
//
// The Timing's Next follows the package's DST rules and returns times in loc.
// Its String is "cron <spec> (<loc>)", e.g. "cron 0 2 * * * (Europe/Berlin)", with the
// spec's fields separated by single spaces.
func ParseCron(spec string, loc *time.Location) (Timing, error) {
	if loc == nil {
		loc = time.UTC
	}
	s := strings.Join(strings.Fields(spec), " ")
	lower := strings.ToLower(s)
	switch {
	case strings.HasPrefix(lower, "@every"):
		return nil, fmt.Errorf("invalid cron spec %q: use every: instead of cron: for an interval", spec)
	case strings.HasPrefix(lower, "cron_tz=") || strings.HasPrefix(lower, "tz="):
		return nil, fmt.Errorf("invalid cron spec %q: use timezone: instead of CRON_TZ=", spec)
	}
	sched, err := parser.Parse(s)
	if err != nil {
		var advice string
		switch {
		case strings.HasPrefix(s, "@"):
			advice = "the macros are @yearly @annually @monthly @weekly @daily @midnight @hourly"
		case len(strings.Fields(s)) != 5:
			advice = "cron: takes 5 fields (minute hour day-of-month month day-of-week), without seconds, and every: takes intervals"
		default:
			advice = "the fields are minute (0-59) hour (0-23) day-of-month (1-31) month (1-12 or JAN-DEC) day-of-week (0-6 or SUN-SAT)"
		}
		return nil, fmt.Errorf("invalid cron spec %q: %s: %w", spec, advice, err)
	}
	ss, ok := sched.(*cron.SpecSchedule)
	if !ok { // only "@every" gives another type, and it is refused above
		return nil, fmt.Errorf("invalid cron spec %q: not a cron spec", spec)
	}
	ss.Location = loc
	return &cronTiming{spec: s, loc: loc, sched: ss}, nil
}

// cronTiming is a robfig SpecSchedule with the package's DST rules. It is
// never modified after ParseCron, so it is safe for concurrent use.
type cronTiming struct {
	spec  string
	loc   *time.Location
	sched *cron.SpecSchedule
}

func (c *cronTiming) String() string { return fmt.Sprintf("cron %s (%s)", c.spec, c.loc) }

// searchYears bounds the search for a fire time, as robfig's Next does.
const searchYears = 5

// Next returns the first fire time after t, in c's location, or the zero
// time if the spec matches nothing within five years.
//
// It takes robfig's next time unless a DST change's window (see window)
// begins before it; then it decides the fire times in that window itself
// and, if none is after t, asks robfig again from the window's end.
func (c *cronTiming) Next(t time.Time) time.Time {
	t = t.In(c.loc)
	limit := t.AddDate(searchYears, 0, 0)
	for {
		next := c.sched.Next(t) // in c.loc, as t is
		bound := next
		if bound.IsZero() {
			bound = limit
		}
		w, ok := nextWindow(t, bound)
		if !ok {
			return next
		}
		if f, ok := w.fire(c.sched, t); ok {
			return f
		}
		t = w.last
	}
}

// window is the stretch of absolute time around one DST change in which
// fire times are decided by the package's rules rather than by robfig:
// from the first pass of an overlap (or the end of a gap) to the first
// whole wall-clock hour after the change. It reaches that hour because
// robfig steps hours in absolute time: after a 30-minute change its steps
// land on :30 and miss the next matching hour (in Australia/Lord_Howe,
// robfig's 0 12 * * * skips 2026-10-04 entirely), so robfig is asked again
// only from a whole hour.
type window struct {
	change time.Time     // the instant the offset changes
	shift  time.Duration // new offset minus old: > 0 for a gap, < 0 for an overlap
	first  time.Time     // the first instant of the window
	last   time.Time     // the last instant of the window
}

// windowAt returns the window of the zone change at instant e (in the
// schedule's location). Its shift is 0 if only the zone's name changes there.
func windowAt(e time.Time) window {
	_, before := e.Add(-time.Nanosecond).Zone()
	_, after := e.Zone()
	w := window{change: e, shift: time.Duration(after-before) * time.Second, first: e}
	end := e // of the gap, or of the overlap's second pass
	if w.shift < 0 {
		w.first, end = e.Add(w.shift), e.Add(-w.shift)
	}
	// The first whole wall-clock hour at or after end.
	m, s, ns := end.Minute(), end.Second(), end.Nanosecond()
	if m != 0 || s != 0 || ns != 0 {
		end = end.Add(time.Hour - time.Duration(m)*time.Minute - time.Duration(s)*time.Second - time.Duration(ns))
	}
	w.last = end.Add(-time.Nanosecond)
	if !w.last.After(e) {
		w.last = e
	}
	return w
}

// nextWindow returns the first window that ends after t and begins at or
// before bound, or false if there is none. t is in the schedule's location.
func nextWindow(t, bound time.Time) (window, bool) {
	start, end := t.ZoneBounds()
	// The change that began t's zone period: t may be in its window.
	if !start.IsZero() {
		if w := windowAt(start); w.shift != 0 && w.last.After(t) {
			return w, true
		}
	}
	for e := end; !e.IsZero(); _, e = e.ZoneBounds() {
		w := windowAt(e)
		if w.first.After(bound) {
			return window{}, false
		}
		if w.shift != 0 { // e > t, so w.last > t
			return w, true
		}
	}
	return window{}, false
}

// fire returns the first fire time of s in w after t, or false. It looks
// at each minute of w: the end of a gap fires if it or any wall-clock
// minute of the gap matches; the second pass of an overlap fires only if
// the hour field matches every hour; any other minute fires if it matches.
func (w window) fire(s *cron.SpecSchedule, t time.Time) (time.Time, bool) {
	x := t.Truncate(time.Minute).Add(time.Minute)
	if x.Before(w.first) {
		x = w.first
	}
	for ; !x.After(w.last); x = x.Add(time.Minute) {
		switch {
		case w.shift > 0 && x.Equal(w.change):
			if w.gapMatches(s) {
				return x, true
			}
		case w.shift < 0 && !x.Before(w.change) && x.Before(w.change.Add(-w.shift)):
			if !everyHour(s) {
				continue
			}
		}
		if matches(s, x) {
			return x, true
		}
	}
	return time.Time{}, false
}

// gapMatches reports whether s matches a wall-clock minute of the gap w.
func (w window) gapMatches(s *cron.SpecSchedule) bool {
	_, before := w.change.Add(-time.Nanosecond).Zone()
	old := w.change.In(time.FixedZone("", before)) // the gap's first wall-clock minute
	for m := time.Duration(0); m < w.shift; m += time.Minute {
		if matches(s, old.Add(m)) {
			return true
		}
	}
	return false
}

// starBit is robfig's mark of a field written as "*" (or "?").
const starBit = 1 << 63

// matches reports whether the wall-clock time of t (in its location)
// matches s, with robfig's day rule: if day-of-month or day-of-week is a
// star both must match, else either.
func matches(s *cron.SpecSchedule, t time.Time) bool {
	has := func(set uint64, v int) bool { return set&(1<<uint(v)) != 0 }
	_, month, d := t.Date()
	hour, minute, second := t.Clock()
	dom, dow := has(s.Dom, d), has(s.Dow, int(t.Weekday()))
	day := dom || dow
	if s.Dom&starBit != 0 || s.Dow&starBit != 0 {
		day = dom && dow
	}
	return day && has(s.Month, int(month)) && has(s.Hour, hour) && has(s.Minute, minute) && has(s.Second, second)
}

// everyHour reports whether s's hour field matches all 24 hours.
func everyHour(s *cron.SpecSchedule) bool {
	const all = 1<<24 - 1
	return s.Hour&all == all
}

// Every fires at the multiples of d since the Unix epoch (1970-01-01T00:00:00Z): for 15m at
// :00, :15, :30, :45 of every hour in UTC; Next(t) is the first such multiple after t.
// d must be > 0 (panics otherwise: validation refuses it before). Time zones do not apply.
//
// Next returns times in t's location, without a monotonic clock reading.
// String is "every " and d as time.Duration prints it without zero trailing
// units: "every 15m", "every 1h30m", "every 7s".
func Every(d time.Duration) Timing {
	if d <= 0 {
		panic(fmt.Sprintf("schedtime.Every: interval %v is not > 0", d))
	}
	return every(d)
}

type every time.Duration

// Next adds to t what is left of the interval: d minus (t mod d), where
// t mod d is on Unix nanoseconds, floored (never negative, also before the
// epoch), and computed in 128 bits so that no time.Time overflows it.
func (e every) Next(t time.Time) time.Time {
	d := uint64(e)
	sec := t.Unix() % int64(d) // sec*1e9 ≡ (sec mod d)*1e9 (mod d)
	if sec < 0 {
		sec += int64(d)
	}
	hi, lo := bits.Mul64(uint64(sec), uint64(time.Second))
	lo, carry := bits.Add64(lo, uint64(t.Nanosecond()), 0)
	_, rem := bits.Div64(hi+carry, lo, d) // hi+carry < d, as the dividend < d*1e9
	return t.Round(0).Add(time.Duration(d - rem))
}

func (e every) String() string { return "every " + yamlscalar.FormatDuration(time.Duration(e)) }
