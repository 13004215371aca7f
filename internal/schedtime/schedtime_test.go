package schedtime_test

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/millrace/millrace/internal/schedtime"
)

func mustLoad(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatalf("LoadLocation(%q): %v", name, err)
	}
	return loc
}

func mustParse(t *testing.T, spec string, loc *time.Location) schedtime.Timing {
	t.Helper()
	tm, err := schedtime.ParseCron(spec, loc)
	if err != nil {
		t.Fatalf("ParseCron(%q): %v", spec, err)
	}
	return tm
}

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	ts, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatal(err)
	}
	return ts
}

// fires iterates Next from from (exclusive) while before to, and returns the
// fire times as RFC 3339 strings in loc. It fails the test if Next does not
// strictly increase.
func fires(t *testing.T, tm schedtime.Timing, from, to time.Time, loc *time.Location) []string {
	t.Helper()
	var out []string
	for x := from; ; {
		n := tm.Next(x)
		if n.IsZero() || !n.Before(to) {
			return out
		}
		if !n.After(x) {
			t.Fatalf("%v: Next(%v) = %v, not after it", tm, x, n)
		}
		out = append(out, n.In(loc).Format(time.RFC3339))
		x = n
	}
}

// onDay keeps the times whose local date (their RFC 3339 prefix) is day.
func onDay(times []string, day string) []string {
	var out []string
	for _, s := range times {
		if strings.HasPrefix(s, day+"T") {
			out = append(out, s)
		}
	}
	return out
}

// at returns day+"T"+clock+":00"+offset for each clock ("15:04").
func at(day, offset string, clocks ...string) []string {
	out := make([]string, len(clocks))
	for i, c := range clocks {
		out[i] = day + "T" + c + ":00" + offset
	}
	return out
}

// clocks returns "hh:mm" for hours from..to (inclusive) and each of minutes.
func clocks(from, to int, minutes ...int) []string {
	var out []string
	for h := from; h <= to; h++ {
		for _, m := range minutes {
			out = append(out, fmt.Sprintf("%02d:%02d", h, m))
		}
	}
	return out
}

func concat(parts ...[]string) []string {
	var out []string
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func equal(a, b []string) bool {
	return strings.Join(a, " ") == strings.Join(b, " ")
}

func TestCronEuropeBerlin2026Changes(t *testing.T) {
	berlin := mustLoad(t, "Europe/Berlin")
	const spring, fall = "2026-03-29", "2026-10-25"
	tests := []struct {
		spec             string
		springs, falling []string
	}{
		{"0 2 * * *", at(spring, "+02:00", "03:00"), at(fall, "+02:00", "02:00")},
		{"30 2 * * *", at(spring, "+02:00", "03:00"), at(fall, "+02:00", "02:30")},
		{"0 3 * * *", at(spring, "+02:00", "03:00"), at(fall, "+01:00", "03:00")},
		{"30 1 * * *", at(spring, "+01:00", "01:30"), at(fall, "+02:00", "01:30")},
		{"@daily", at(spring, "+01:00", "00:00"), at(fall, "+02:00", "00:00")},
		{"0 * * * *",
			concat(at(spring, "+01:00", clocks(0, 1, 0)...), at(spring, "+02:00", clocks(3, 23, 0)...)),
			concat(at(fall, "+02:00", clocks(0, 2, 0)...), at(fall, "+01:00", clocks(2, 23, 0)...))},
		{"*/30 * * * *",
			concat(at(spring, "+01:00", clocks(0, 1, 0, 30)...), at(spring, "+02:00", clocks(3, 23, 0, 30)...)),
			concat(at(fall, "+02:00", clocks(0, 2, 0, 30)...), at(fall, "+01:00", clocks(2, 23, 0, 30)...))},
	}
	for _, tt := range tests {
		t.Run(tt.spec, func(t *testing.T) {
			tm := mustParse(t, tt.spec, berlin)
			march := fires(t, tm, time.Date(2026, 3, 26, 0, 0, 0, 0, berlin), time.Date(2026, 4, 2, 0, 0, 0, 0, berlin), berlin)
			if got := onDay(march, spring); !equal(got, tt.springs) {
				t.Errorf("%s: got %v, want %v", spring, got, tt.springs)
			}
			october := fires(t, tm, time.Date(2026, 10, 22, 0, 0, 0, 0, berlin), time.Date(2026, 10, 29, 0, 0, 0, 0, berlin), berlin)
			if got := onDay(october, fall); !equal(got, tt.falling) {
				t.Errorf("%s: got %v, want %v", fall, got, tt.falling)
			}
		})
	}
}

func TestCronDailyFiresOncePerLocalDay2026(t *testing.T) {
	for _, zone := range []string{"Europe/Berlin", "America/New_York", "Australia/Lord_Howe"} {
		loc := mustLoad(t, zone)
		for _, spec := range []string{"0 2 * * *", "30 2 * * *", "15 2 * * *", "0 3 * * *", "30 1 * * *", "45 1 * * *", "@daily"} {
			t.Run(zone+"/"+spec, func(t *testing.T) {
				from, to := time.Date(2026, 1, 1, 0, 0, 0, 0, loc), time.Date(2027, 1, 1, 0, 0, 0, 0, loc)
				perDay := map[string]int{}
				for _, f := range fires(t, mustParse(t, spec, loc), from.Add(-time.Nanosecond), to, loc) {
					perDay[f[:len("2026-01-01")]]++
				}
				for d := from; d.Before(to); d = d.AddDate(0, 0, 1) {
					if n := perDay[d.Format(time.DateOnly)]; n != 1 {
						t.Errorf("%s: %d fires, want 1", d.Format(time.DateOnly), n)
					}
				}
			})
		}
	}
}

func TestCronOtherZones2026Changes(t *testing.T) {
	tests := []struct {
		zone, spec string
		day        string
		want       []string
	}{
		// New York: 02:00 EST -> 03:00 EDT on 8 March, 02:00 EDT -> 01:00 EST on 1 November.
		{"America/New_York", "30 2 * * *", "2026-03-08", at("2026-03-08", "-04:00", "03:00")},
		{"America/New_York", "30 2 * * *", "2026-11-01", at("2026-11-01", "-05:00", "02:30")},
		{"America/New_York", "30 1 * * *", "2026-03-08", at("2026-03-08", "-05:00", "01:30")},
		{"America/New_York", "30 1 * * *", "2026-11-01", at("2026-11-01", "-04:00", "01:30")},
		{"America/New_York", "0 * * * *", "2026-11-01", concat(
			at("2026-11-01", "-04:00", clocks(0, 1, 0)...), at("2026-11-01", "-05:00", clocks(1, 23, 0)...))},
		// Lord Howe: 02:00 +11 -> 01:30 +10:30 on 5 April, 02:00 +10:30 -> 02:30 +11 on 4 October.
		{"Australia/Lord_Howe", "30 2 * * *", "2026-10-04", at("2026-10-04", "+11:00", "02:30")},
		{"Australia/Lord_Howe", "30 2 * * *", "2026-04-05", at("2026-04-05", "+10:30", "02:30")},
		{"Australia/Lord_Howe", "0 2 * * *", "2026-10-04", at("2026-10-04", "+11:00", "02:30")},
		{"Australia/Lord_Howe", "15 2 * * *", "2026-10-04", at("2026-10-04", "+11:00", "02:30")},
		{"Australia/Lord_Howe", "45 1 * * *", "2026-04-05", at("2026-04-05", "+11:00", "01:45")},
		{"Australia/Lord_Howe", "*/15 1-2 * * *", "2026-10-04", concat(
			at("2026-10-04", "+10:30", clocks(1, 1, 0, 15, 30, 45)...), at("2026-10-04", "+11:00", clocks(2, 2, 30, 45)...))},
		{"Australia/Lord_Howe", "*/15 1 * * *", "2026-04-05", at("2026-04-05", "+11:00", clocks(1, 1, 0, 15, 30, 45)...)},
		{"Australia/Lord_Howe", "*/15 * * * *", "2026-04-05", concat(
			at("2026-04-05", "+11:00", clocks(0, 1, 0, 15, 30, 45)...),
			at("2026-04-05", "+10:30", "01:30", "01:45"),
			at("2026-04-05", "+10:30", clocks(2, 23, 0, 15, 30, 45)...))},
	}
	for _, tt := range tests {
		t.Run(tt.zone+"/"+tt.spec+"/"+tt.day, func(t *testing.T) {
			loc := mustLoad(t, tt.zone)
			day, err := time.ParseInLocation(time.DateOnly, tt.day, loc)
			if err != nil {
				t.Fatal(err)
			}
			got := onDay(fires(t, mustParse(t, tt.spec, loc), day.AddDate(0, 0, -2), day.AddDate(0, 0, 2), loc), tt.day)
			if !equal(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

var robfigParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// robfig parses spec with robfig's parser and sets its location.
func robfig(t *testing.T, spec string, loc *time.Location) *cron.SpecSchedule {
	t.Helper()
	s, err := robfigParser.Parse(spec)
	if err != nil {
		t.Fatalf("robfig Parse(%q): %v", spec, err)
	}
	ss := s.(*cron.SpecSchedule)
	ss.Location = loc
	return ss
}

// randomSpec returns a random 5-field spec of numbers, lists, ranges and steps.
func randomSpec(r *rand.Rand) string {
	field := func(lo, hi int) string {
		switch r.IntN(5) {
		case 0:
			return "*"
		case 1:
			return fmt.Sprint(lo + r.IntN(hi-lo+1))
		case 2:
			a, b := lo+r.IntN(hi-lo+1), lo+r.IntN(hi-lo+1)
			return fmt.Sprintf("%d,%d", a, b)
		case 3:
			a := lo + r.IntN(hi-lo+1)
			return fmt.Sprintf("%d-%d", a, a+r.IntN(hi-a+1))
		default:
			return fmt.Sprintf("*/%d", 1+r.IntN((hi-lo+1)/2))
		}
	}
	return strings.Join([]string{field(0, 59), field(0, 23), field(1, 28), field(1, 12), field(0, 6)}, " ")
}

// TestCronMatchesRobfigAwayFromTransitions is what `millrace schedules ls`
// promises: next fire times match the library's computation.
func TestCronMatchesRobfigAwayFromTransitions(t *testing.T) {
	zones := []string{"UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Tokyo", "Asia/Kolkata", "America/Sao_Paulo", "Pacific/Chatham"}
	specs := []string{"0 2 * * *", "30 2 * * *", "*/15 * * * *", "0 * * * *", "0 9 * * MON-FRI", "0 0 1 JAN *",
		"@yearly", "@monthly", "@weekly", "@daily", "@hourly", "5 4 13 * FRI", "0 12 1,15 * *", "59 23 31 12 *"}
	var locs []*time.Location
	for _, z := range zones {
		locs = append(locs, mustLoad(t, z))
	}
	r := rand.New(rand.NewPCG(1, 2))
	lo, hi := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC).Unix(), time.Date(2040, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
	compared := 0
	for i := 0; i < 5000; i++ {
		spec := specs[r.IntN(len(specs))]
		if r.IntN(2) == 0 {
			spec = randomSpec(r)
		}
		loc := locs[r.IntN(len(locs))]
		at := time.Unix(lo+r.Int64N(hi-lo), r.Int64N(int64(time.Second))).In(loc)
		if r.IntN(4) == 0 {
			at = at.Truncate(time.Minute) // on a possible fire time
		}
		want := robfig(t, spec, loc).Next(at)
		if want.IsZero() {
			continue
		}
		// Away from transitions: none from 3h before at to 3h after want.
		if _, end := at.Add(-3 * time.Hour).ZoneBounds(); !end.IsZero() && !end.After(want.Add(3*time.Hour)) {
			continue
		}
		compared++
		if got := mustParse(t, spec, loc).Next(at); !got.Equal(want) || got.Location() != loc {
			t.Errorf("%q in %v: Next(%v) = %v, robfig %v", spec, loc, at, got, want)
		}
	}
	if compared < 2000 {
		t.Errorf("only %d instants away from transitions", compared)
	}
}

// referenceFires returns the fire times in [from, to] by the package's
// rules, looking at every minute: a wall-clock time that matches fires
// unless it is the second pass of an overlap (and the hour field is not
// every hour); the end of a gap fires if the instant or any minute of the
// gap matches. Matching uses robfig in a fixed zone of the instant's offset.
func referenceFires(t *testing.T, spec string, loc *time.Location, from, to time.Time) []string {
	sched := robfig(t, spec, loc)
	matches := func(x time.Time, offset int) bool {
		fixed := *sched
		fixed.Location = time.FixedZone("", offset)
		return fixed.Next(x.Add(-time.Second)).Equal(x)
	}
	everyHour := sched.Hour&(1<<24-1) == 1<<24-1
	var out []string
	for x := from.Truncate(time.Minute); !x.After(to); x = x.Add(time.Minute) {
		if x.Before(from) {
			continue
		}
		x := x.In(loc)
		_, off := x.Zone()
		start, _ := x.ZoneBounds()
		_, prev := start.Add(-time.Nanosecond).Zone()
		shift := time.Duration(off-prev) * time.Second
		fire := matches(x, off)
		switch {
		case shift > 0 && x.Equal(start): // the end of a gap
			for g := start; g.Before(start.Add(shift)); g = g.Add(time.Minute) {
				fire = fire || matches(g, prev)
			}
		case shift < 0 && x.Before(start.Add(-shift)): // the second pass of an overlap
			fire = fire && everyHour
		}
		if fire {
			out = append(out, x.Format(time.RFC3339))
		}
	}
	return out
}

// TestCronAroundTransitionsMatchesReference compares Next, iterated and
// called from every minute and half-minute near a change (inside overlaps,
// exactly at changes), with referenceFires, in zones with unusual changes.
func TestCronAroundTransitionsMatchesReference(t *testing.T) {
	zones := []struct {
		name string
		year int
	}{
		{"Europe/Berlin", 2026},
		{"America/New_York", 2026},
		{"Australia/Lord_Howe", 2026}, // 30 minutes
		{"Pacific/Chatham", 2026},     // at :45
		{"Antarctica/Troll", 2026},    // 2 hours
		{"America/Santiago", 2026},    // at midnight
		{"America/Havana", 2026},      // at midnight
		{"America/Sao_Paulo", 2018},   // at midnight
		{"Pacific/Apia", 2011},        // 30 December 2011 did not exist
	}
	specs := []string{"0 2 * * *", "30 2 * * *", "45 1 * * *", "0 0 * * *", "30 0 * * *", "0 23 * * *", "0 12 * * *",
		"*/15 * * * *", "0 * * * *", "*/20 0-3 * * *", "0 1-3 * * *", "0 2 * * SUN", "0 0 * * SAT"}
	for _, z := range zones {
		loc := mustLoad(t, z.name)
		changes := 0
		for _, e := time.Date(z.year, 1, 1, 0, 0, 0, 0, loc).ZoneBounds(); changes < 2 && !e.IsZero(); _, e = e.ZoneBounds() {
			changes++
			for _, spec := range specs {
				t.Run(fmt.Sprintf("%s/%s/%s", z.name, e.Format(time.DateOnly), spec), func(t *testing.T) {
					t.Parallel()
					from, to := e.Add(-26*time.Hour), e.Add(26*time.Hour)
					want := referenceFires(t, spec, loc, from, to)
					tm := mustParse(t, spec, loc)
					if got := fires(t, tm, from.Add(-time.Nanosecond), to.Add(time.Nanosecond), loc); !equal(got, want) {
						t.Fatalf("got  %v\nwant %v", got, want)
					}
					// Every 150s (minutes and half-minutes) from 3h before the change to 3h after, and around it.
					starts := []time.Time{e.Add(-time.Nanosecond), e, e.Add(time.Nanosecond)}
					for x := e.Add(-3 * time.Hour); x.Before(e.Add(3 * time.Hour)); x = x.Add(150 * time.Second) {
						starts = append(starts, x)
					}
					for _, x := range starts {
						i := 0 // want[i] is the first reference fire after x
						for i < len(want) && !mustTime(t, want[i]).After(x) {
							i++
						}
						if got := tm.Next(x).Format(time.RFC3339Nano); i < len(want) && got != want[i] {
							t.Errorf("Next(%s) = %s, want %s", x.Format(time.RFC3339Nano), got, want[i])
						}
					}
				})
			}
		}
	}
}

func TestCronNeverMatches(t *testing.T) {
	for _, zone := range []string{"UTC", "Europe/Berlin"} {
		for _, spec := range []string{"0 0 30 2 *", "0 2 31 4 *", "30 2 30 FEB *"} {
			tm := mustParse(t, spec, mustLoad(t, zone))
			if got := tm.Next(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)); !got.IsZero() {
				t.Errorf("%v: Next = %v, want the zero time", tm, got)
			}
		}
	}
}

func TestCronNextIsInScheduleLocation(t *testing.T) {
	berlin := mustLoad(t, "Europe/Berlin")
	tm := mustParse(t, "0 2 * * *", berlin)
	from := mustTime(t, "2026-03-28T12:00:00-07:00")
	for _, at := range []time.Time{from, from.UTC(), from.In(berlin)} {
		got := tm.Next(at)
		if s := got.Format(time.RFC3339); s != "2026-03-29T03:00:00+02:00" || got.Location() != berlin {
			t.Errorf("Next(%v) = %s in %v", at, s, got.Location())
		}
	}
	if got := mustParse(t, "0 2 * * *", nil).Next(from); got.Format(time.RFC3339) != "2026-03-29T02:00:00Z" {
		t.Errorf("nil location: Next = %v, want 2026-03-29T02:00:00Z", got)
	}
}

func TestCronConcurrentNext(t *testing.T) {
	tm := mustParse(t, "*/15 * * * *", mustLoad(t, "Europe/Berlin"))
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Go(func() {
			x := time.Date(2026, 10, 25, 0, 0, 0, 0, time.UTC)
			for range 100 {
				x = tm.Next(x)
			}
		})
	}
	wg.Wait()
}

func TestParseCronErrors(t *testing.T) {
	tests := []struct{ spec, advice string }{
		{"@every 5m", "use every: instead of cron: for an interval"},
		{"@every", "use every: instead of cron: for an interval"},
		{"CRON_TZ=Europe/Berlin 0 2 * * *", "use timezone: instead of CRON_TZ="},
		{"TZ=UTC 0 2 * * *", "use timezone: instead of CRON_TZ="},
		{"TZ=UTC", "use timezone: instead of CRON_TZ="},
		{"0 0 2 * * *", "cron: takes 5 fields (minute hour day-of-month month day-of-week)"},
		{"0 0 2 * * *", "every: takes intervals"},
		{"0 2 * *", "cron: takes 5 fields"},
		{"", "cron: takes 5 fields"},
		{"every day at noon", "cron: takes 5 fields"},
		{"a b c d e", "the fields are minute (0-59) hour (0-23)"},
		{"61 * * * *", "minute (0-59)"},
		{"61 * * * *", "end of range (61) above maximum (59)"}, // robfig's detail, kept
		{"0 2 * * 7", "day-of-week (0-6 or SUN-SAT)"},
		{"@fortnightly", "the macros are @yearly @annually @monthly @weekly @daily @midnight @hourly"},
	}
	for _, tt := range tests {
		t.Run(tt.spec, func(t *testing.T) {
			tm, err := schedtime.ParseCron(tt.spec, time.UTC)
			if err == nil {
				t.Fatalf("ParseCron = %v, want an error", tm)
			}
			msg := err.Error()
			if !strings.Contains(msg, tt.advice) {
				t.Errorf("error %q does not say %q", msg, tt.advice)
			}
			if !strings.HasPrefix(msg, "invalid cron spec ") {
				t.Errorf("error %q does not start with %q", msg, "invalid cron spec ")
			}
		})
	}
}

func TestParseCronAccepts(t *testing.T) {
	for _, spec := range []string{"0 2 * * *", "0 9 * * MON-FRI", "0 0 1 JAN,jul *", "*/5 8-18/2 1-15 * 1,3,5", "0 0 ? * *",
		"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly", "  0  2 * * *\t"} {
		if _, err := schedtime.ParseCron(spec, nil); err != nil {
			t.Errorf("ParseCron(%q): %v", spec, err)
		}
	}
}

func TestString(t *testing.T) {
	tests := []struct {
		timing schedtime.Timing
		want   string
	}{
		{mustParse(t, "0 2 * * *", mustLoad(t, "Europe/Berlin")), "cron 0 2 * * * (Europe/Berlin)"},
		{mustParse(t, " 0  2 * * * ", mustLoad(t, "Europe/Berlin")), "cron 0 2 * * * (Europe/Berlin)"},
		{mustParse(t, "@daily", nil), "cron @daily (UTC)"},
		{schedtime.Every(15 * time.Minute), "every 15m"},
		{schedtime.Every(time.Hour), "every 1h"},
		{schedtime.Every(90 * time.Minute), "every 1h30m"},
		{schedtime.Every(7 * time.Second), "every 7s"},
		{schedtime.Every(24 * time.Hour), "every 24h"},
		{schedtime.Every(1500 * time.Millisecond), "every 1.5s"},
	}
	for _, tt := range tests {
		if got := tt.timing.String(); got != tt.want {
			t.Errorf("String() = %q, want %q", got, tt.want)
		}
	}
}

func TestEvery(t *testing.T) {
	tests := []struct {
		d        time.Duration
		at, want string
	}{
		{time.Second, "2026-03-29T01:59:59.5Z", "2026-03-29T02:00:00Z"},
		{time.Second, "2026-03-29T02:00:00Z", "2026-03-29T02:00:01Z"},
		{15 * time.Minute, "2026-03-29T02:07:00Z", "2026-03-29T02:15:00Z"},
		{15 * time.Minute, "2026-03-29T02:15:00Z", "2026-03-29T02:30:00Z"},
		{15 * time.Minute, "2026-03-29T02:59:59.999999999Z", "2026-03-29T03:00:00Z"},
		{15 * time.Minute, "2026-03-29T03:07:00+02:00", "2026-03-29T03:15:00+02:00"}, // zones do not apply
		{15 * time.Minute, "2026-03-29T03:07:00+05:30", "2026-03-29T03:15:00+05:30"},
		{15 * time.Minute, "2026-03-29T03:07:00+05:45", "2026-03-29T03:15:00+05:45"}, // 21:30Z after 21:22Z
		{time.Hour, "2026-10-25T02:30:00+01:00", "2026-10-25T03:00:00+01:00"},
		{time.Hour, "2026-10-25T02:30:00+05:30", "2026-10-25T03:30:00+05:30"}, // 21:00Z -> 22:00Z
		{7 * time.Second, "1970-01-01T00:00:00Z", "1970-01-01T00:00:07Z"},
		{7 * time.Second, "1970-01-01T00:00:06.999Z", "1970-01-01T00:00:07Z"},
		{7 * time.Second, "2026-01-01T00:00:00Z", "2026-01-01T00:00:07Z"}, // 1767225600s is a multiple of 7s
		{7 * time.Second, "2026-01-01T00:00:01Z", "2026-01-01T00:00:07Z"},
		{24 * time.Hour, "2026-03-29T12:00:00Z", "2026-03-30T00:00:00Z"},
		{24 * time.Hour, "2026-03-29T12:00:00+02:00", "2026-03-30T02:00:00+02:00"},
		// Before the epoch: floored, not truncated toward zero.
		{7 * time.Second, "1969-12-31T23:59:59Z", "1970-01-01T00:00:00Z"},
		{7 * time.Second, "1969-12-31T23:59:53Z", "1970-01-01T00:00:00Z"}, // -7s is a multiple
		{7 * time.Second, "1969-12-31T23:59:52Z", "1969-12-31T23:59:53Z"},
		{7 * time.Second, "1969-12-31T23:59:52.5Z", "1969-12-31T23:59:53Z"},
		{15 * time.Minute, "1969-12-31T23:50:00Z", "1970-01-01T00:00:00Z"},
		{15 * time.Minute, "1969-12-31T23:45:00Z", "1970-01-01T00:00:00Z"},
		{time.Hour, "1900-06-01T10:20:00Z", "1900-06-01T11:00:00Z"},
		// The zero time, out of UnixNano's range.
		{time.Hour, "0001-01-01T00:00:00Z", "0001-01-01T01:00:00Z"},
		{24 * time.Hour, "0001-01-01T00:00:00Z", "0001-01-02T00:00:00Z"},
		{time.Hour, "9999-12-31T22:30:00Z", "9999-12-31T23:00:00Z"},
	}
	for _, tt := range tests {
		got := schedtime.Every(tt.d).Next(mustTime(t, tt.at)).Format(time.RFC3339Nano)
		if got != tt.want {
			t.Errorf("Every(%v).Next(%s) = %s, want %s", tt.d, tt.at, got, tt.want)
		}
	}
}

func TestEveryIsMultipleOfIntervalAndStrictlyIncreasing(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	lo, hi := time.Date(1850, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano(), time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	for _, d := range []time.Duration{time.Nanosecond, 3 * time.Millisecond, time.Second, 7 * time.Second, 15 * time.Minute, time.Hour, 24 * time.Hour, 1<<40 + 1} {
		e := schedtime.Every(d)
		for i := 0; i < 1000; i++ {
			at := time.Unix(0, lo+r.Int64N(hi-lo))
			n := e.Next(at)
			if !n.After(at) || n.Sub(at) > d || n.UnixNano()%int64(d) != 0 {
				t.Fatalf("Every(%v).Next(%v) = %v: not the first multiple after it", d, at, n)
			}
			if nn := e.Next(n); nn.Sub(n) != d {
				t.Fatalf("Every(%v).Next(%v) = %v, want %v later", d, n, nn, d)
			}
		}
	}
}

func TestEveryPanicsOnNonPositive(t *testing.T) {
	for _, d := range []time.Duration{0, -time.Second} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Every(%v) did not panic", d)
				}
			}()
			schedtime.Every(d)
		}()
	}
}
