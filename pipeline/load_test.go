package pipeline_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	_ "github.com/millrace/millrace/filters/std"
	"github.com/millrace/millrace/pipeline"
)

func noEnv(string) (string, bool) { return "", false }

func load(t *testing.T, path string, env func(string) (string, bool)) (*pipeline.File, error) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return pipeline.Parse(path, data, env)
}

func TestLoad_good_fixtures_are_valid(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.good.yaml")
	if len(files) == 0 {
		t.Fatal("no good fixtures")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			if _, err := load(t, f, noEnv); err != nil {
				t.Fatalf("want valid, got:\n%v", err)
			}
		})
	}
}

// Each bad fixture must report exactly these problems, in this order, each
// as file:line:col: followed by a message containing the text given.
var badFixtures = map[string][]string{
	"three-problems.bad.yaml": {
		`6:5: unknown key "colour" in pipeline`,
		`12:17: pipeline "orders" stage "price": unknown filter "no-such-filter" (known filters: exec, jq, log)`,
		`13:15: pipeline "orders": duplicate stage name "validate" (first defined at line 8)`,
	},
	"config.bad.yaml": {
		`12:11: pipeline "p" stage "a": unknown config key "colour" for filter "jq" (known: program`,
		`16:22: pipeline "p" stage "b": max_bytes: want a whole number, got "lots"`,
		`18:17: pipeline "p" stage "c": filter "jq" needs config key "program"`,
		`22:20: pipeline "p" stage "d": filter "jq": program:`,
		`25:29: pipeline "p" stage "e": filter "log": max_bytes: max_bytes must not be negative, got -1`,
		`25:33: pipeline "p" stage "e": unknown config key "colour" for filter "log"`,
	},
	"names.bad.yaml": {
		`2:10: unsupported version 2`,
		`4:15: partitions must be between 1 and 10000, got 0`,
		`6:11: pipeline name "Orders" must be lowercase`,
		`7:12: pipeline "Orders": input "bad topic" is not a valid Kafka topic name`,
		`11:22: concurrency must be between 1 and 10000, got -1`,
		`14:13: pipeline "loop": output is the same topic as input`,
		`18:16: pipeline "loop" stage "first": the first stage reads the pipeline's input`,
		`20:12: environment variable MILLRACE_SURELY_UNSET_VAR is not set`,
		`21:13: pipeline "env" has no stages`,
	},
	"collision.bad.yaml": {
		`15:15: stage a.b/c would share consumer group "millrace.a.b.c" with stage a/b.c`,
		`17:11: duplicate pipeline name "a" (first defined at line 5)`,
	},
	"policies.bad.yaml": {
		`4:21: attempts must be between 1 and 1000, got 0`,
		`4:43: initial must be at least 1ms, got 0s`,
		`4:59: multiplier must be between 1 and 100, got 0.5`,
		`4:72: jitter must be between 0 and 1 (a fraction of the delay), got 1.5`,
		`5:13: ordering "fifo": want key (records of one key in order) or none`,
		`6:12: timeout must be between 0s (no limit) and 24h, got -1s`,
		`10:20: tiers: list 1 to 20 delays (such as [5s, 1m, 10m]), got 0`,
		`11:14: timeout must be between 0s (no limit) and 24h, got 25h`,
		`16:21: attempts must be between 1 and 1000, got 1001`,
		`17:26: backoff max 100ms is less than initial 200ms (the default initial)`,
		`18:23: retry tier 2 must be between 10ms and 168h, got 5ms`,
		`18:28: tiers: want a duration like 30s or 5m, got "8d"`,
		`18:32: retry tier 4 must be between 10ms and 168h, got 200h`,
		`19:11: unknown key "delay" in retry (known keys: attempts, backoff, tiers)`,
		`22:18: timeout: want a duration like 30s or 5m, got "30"`,
		`23:45: backoff max 1s is less than initial 2s`,
		`23:61: multiplier: want a number, got "lots"`,
		`24:19: ordering: want a string, got a list`,
		`27:24: tiers: list 1 to 20 delays (such as [5s, 1m, 10m]), got 21`,
	},
	"dedup.bad.yaml": {
		`7:5: unknown key "dedup" in pipeline`,
		`11:16: pipeline "p" stage "a": dedup: missing key "key" (a jq expression such as .order_id, or header:NAME)`,
		`14:22: pipeline "p" stage "b": dedup key: "header:" needs a header name`,
		`14:41: window must be more than 0s and at most 720h, got 0s`,
		`14:55: max_keys must be between 1 and 100000000, got 0`,
		`17:22: pipeline "p" stage "c": dedup key: jq expression does not parse`,
		`17:44: window must be more than 0s and at most 720h, got 721h`,
		`17:60: max_keys must be between 1 and 100000000, got 100000001`,
		`20:22: pipeline "p" stage "d": dedup key: key is empty`,
		`20:34: window: want a duration like 30s or 5m, got "soon"`,
		`23:22: pipeline "p" stage "e": dedup key: jq expression does not compile: variable not defined: $nope`,
		`23:29: unknown key "keys" in dedup (known keys: key, window, max_keys)`,
	},
	"priority.bad.yaml": {
		`10:33: weight must be between 1 and 1000, got 0`,
		`10:42: pipeline "p" priority entry 1: name "High" must be lowercase`,
		`11:17: pipeline "p" priority entry 2: topic "bad topic" is not a valid Kafka topic name`,
		`11:38: weight must be between 1 and 1000, got 1001`,
		`12:17: pipeline "p" priority entry 3: topic "p.high" is listed twice (first at line 10)`,
		`13:17: pipeline "p" priority entry 4: topic "p.out" is the pipeline's output, records would loop forever`,
		`14:17: pipeline "p" priority entry 5: topic "q.quarantine" is the quarantine topic of pipeline "q"`,
		`15:9: pipeline "p" priority entry 6: missing key "topic"`,
		`16:30: pipeline "p" priority entry 7: name "p.in" is taken by the input topic`,
		`17:30: pipeline "p" priority entry 8: name "p.low" is the topic of another entry (line 16)`,
		`18:9: priority: want a mapping, got "p.extra"`,
		`24:15: pipeline "q": priority lists no topics`,
	},
	"internal-topics.bad.yaml": {
		`11:9: stage a/first's retry tier 2 topic "a.first.retry.2" is also the topic stage a/b reads: rename one`,
		`13:16: stage a/first's dedup changelog "a.first.dedup" is also the input of pipeline "c": rename one`,
		`14:9: stage a/b's retry tier 1 topic "a.b.retry.1" is also the output of pipeline "c": rename one`,
		`31:16: stage d/s's dedup changelog "d.s.dedup" is also a priority topic of pipeline "d": rename one`,
		`36:16: stage e/two would read topic "d.high", which is also a priority topic of pipeline "d": rename one or set ` + "`topic:`",
	},
	"kafka-collision.bad.yaml": {
		`13:11: topic "web_clicks.quarantine" (the quarantine topic of pipeline "web_clicks") collides with "web.clicks.quarantine" (the quarantine topic of pipeline "web.clicks", line 8): Kafka refuses topic names that are equal once '.' reads as '_'; rename one; so does "web_clicks.quarantine.replayed"`,
		`14:12: topic "web_clicks" (the input of pipeline "web_clicks") collides with "web.clicks" (the input of pipeline "web.clicks", line 9)`,
		`16:16: topic "web_clicks.count.retry.1" (stage web_clicks/count's retry tier 1 topic) collides with "web.clicks.count.retry.1" (stage web.clicks/count's retry tier 1 topic, line 11)`,
		`17:16: topic "web_clicks.store" (the topic stage web_clicks/store reads) collides with "web.clicks.store" (the topic stage web.clicks/store reads, line 12): Kafka refuses topic names that are equal once '.' reads as '_'; rename one; ` +
			`so does "web_clicks.store.retry.1" (stage web_clicks/store's retry tier 1 topic) with "web.clicks.store.retry.1" (stage web.clicks/store's retry tier 1 topic, line 12); ` +
			`so does "web_clicks.store.dedup" (stage web_clicks/store's dedup changelog) with "web.clicks.store.dedup" (stage web.clicks/store's dedup changelog, line 12)`,
	},
	"null-items.bad.yaml": {
		`6:25: tiers: item 2 is empty: want a duration like 30s or 5m`,
		`9:8: stages: item 2 is empty: want a mapping`,
		`10:5: pipelines: item 2 is empty: want a mapping`,
	},
	"admin.bad.yaml": {
		`5:9: admin addr "localhost": want host:port (port 0..65535) or off`,
		`6:3: unknown key "tokn" in admin (known keys: addr, token)`,
	},
	"api.bad.yaml": {
		`5:9: api addr "localhost": want host:port (port 0..65535)`,
		`6:19: max_body_bytes must be between 1 and 67108864, got 0`,
		`7:20: produce_timeout must be between 1s and 5m, got 10m`,
		`8:13: max_wait must be more than 0s and at most 10m, got 0s`,
		`10:14: api token 1: missing or empty token (use ${ENV} to take it from the environment)`,
		`11:48: api token 2: no pipeline named "nope"`,
		`12:15: api token 3 is the same as token 2`,
		`13:7: api token 4: missing or empty token (use ${ENV} to take it from the environment)`,
		`13:8: unknown key "tokn" in api token (known keys: token, pipelines)`,
	},
	"results.bad.yaml": {
		`10:21: keep must be more than 0s and at most 876000h, got 0s`,
		`10:42: reply_max_bytes must be between 0 and 1048576, got 1048577`,
		`10:51: unknown key "colour" in results (known keys: keep, reply_topics, reply_max_bytes, callback, callback_hosts)`,
		`15:13: keep: want a duration like 30s or 5m, got "soon"`,
		`16:33: pipeline "b" results: reply topic "bad topic" is not a valid Kafka topic name (letters, digits, '.', '_', '-'; at most 249)`,
		`16:46: pipeline "b" results: reply topic "b.replies" is listed twice (first at line 16)`,
		`16:57: pipeline "b" results: reply topic "" is not a valid Kafka topic name`,
		`17:24: reply_max_bytes must be between 0 and 1048576, got -1`,
		`22:7: pipeline "c" results: missing key "callback_hosts"`,
		`22:17: pipeline "c" results: callback: missing key "url" (the http or https URL each finished job's status is POSTed to)`,
		`22:38: timeout must be more than 0s, got 0s`,
		`27:17: pipeline "d" results: callback: missing key "secret" (the HMAC-SHA256 key of X-Millrace-Signature; use ${ENV})`,
		`33:23: pipeline "e" results: callback url "ftp://hooks.example.com/x": want an http or https URL with a host, such as https://hooks.example.com/millrace`,
		`33:60: pipeline "e" results: callback secret is empty: the HMAC-SHA256 key needs at least one byte`,
		`39:23: pipeline "f" results: callback url "https:///x": want an http or https URL with a host`,
		`45:7: pipeline "g" results: missing key "callback_hosts", which callback needs: the hosts its url may name, such as [hooks.example.com, "*.example.org"]`,
		`45:82: initial must be more than 0s, got 0s`,
		`45:96: deadline must be more than 0s, got -1m`,
		`50:82: retry max 1m (the default max) is less than initial 2m`,
		`51:23: pipeline "h" results: callback_hosts lists no hosts`,
		`57:14: pipeline "i" results: callback url "https://evil.example.net:8443/x": host "evil.example.net" is not one of callback_hosts (allowed: hooks.example.com, *.example.org, https://x.example.net, *., h:80)`,
		`59:18: timeout must be more than 0s, got -1s`,
		`60:35: retry max 500ms is less than initial 1s`,
		`60:42: unknown key "backoff" in callback retry (known keys: initial, max, deadline)`,
		`61:60: pipeline "i" results: callback_hosts entry 3 "https://x.example.net": want a host name (hooks.example.com), "*." and a domain for any of its subdomains ("*.example.org"), or an IP address; no scheme, port or path`,
		`61:85: pipeline "i" results: callback_hosts entry 4 "*.": want a host name`,
		`61:91: pipeline "i" results: callback_hosts entry 5 "h:80": want a host name`,
		`65:14: results: want a mapping, got a list`,
		`71:83: pipeline "k" results: callback retry deadline 2h is longer than keep 30m`,
	},
	"results-names.bad.yaml": {
		`13:22: topic "orders.quarantine" (a reply topic of pipeline "orders") is also the quarantine topic of pipeline "orders" (line 10): rename one`,
		`13:41: topic "orders.jobs" (a reply topic of pipeline "orders") is also the job events topic of pipeline "orders" (results at line 13): rename one`,
		`13:54: topic "orders.price" (a reply topic of pipeline "orders") is also the topic stage orders/price reads (line 16): rename one`,
		`13:68: topic "orders_jobs_status" (a reply topic of pipeline "orders") collides with "orders.jobs.status" (the job status topic of pipeline "orders", line 10)` + collide,
		`17:16: stage orders/jobs would share consumer group "millrace.orders.jobs" with the job folder of pipeline "orders" (results at line 13); ` +
			`topic "orders.jobs" (the topic stage orders/jobs reads) is also the job events topic of pipeline "orders" (results at line 13): rename one`,
		`18:16: topic "orders.jobs.status" (the topic stage orders/jobs.status reads) is also the job status topic of pipeline "orders" (results at line 13): rename one`,
		`25:13: topic "shop.jobs" (the output of pipeline "first") is also the job events topic of pipeline "shop" (results at line 21): rename one`,
		`27:21: stage first/jobs would share consumer group "millrace.first.jobs" with the job folder of pipeline "first" (results at line 26): rename one`,
		`33:24: topic "loop.jobs" (a priority topic of pipeline "loop") is also the job events topic of pipeline "loop" (results at line 34): rename one`,
		`42:45: stage a/b.jobs would share consumer group "millrace.a.b.jobs" with the job folder of pipeline "a.b" (results at line 38); ` +
			`topic "a.b.jobs" (the topic stage a/b.jobs reads) is also the job events topic of pipeline "a.b" (results at line 38): rename one`,
	},
	"schedules.bad.yaml": {
		`17:9: schedule: missing key "name"`,
		`18:16: schedule name "Nightly" must be lowercase letters and digits, separated by single '.', '_' or '-'`,
		`20:16: pipeline "p": duplicate schedule name "a" (first defined at line 19)`,
		`21:9: pipeline "p" schedule "b": a schedule needs cron: or every: (such as cron: "0 2 * * *" or every: 15m)`,
		`22:45: pipeline "p" schedule "c": cron: and every: are both set: choose one`,
		`23:25: pipeline "p" schedule "d": invalid cron spec "@every 5m": use every: instead of cron: for an interval`,
		`24:25: pipeline "p" schedule "e": cron "0 0 30 2 *" has no tick in the five years after 2026-01-01: it would never fire`,
		`25:26: pipeline "p" schedule "f": every must be at least 1s, got 500ms`,
		`26:48: pipeline "p" schedule "g": unknown timezone "Europe/Berlinn": want an IANA time zone name such as Europe/Berlin, or UTC`,
		`27:48: pipeline "p" schedule "h": unknown timezone "Local": want an IANA time zone name such as Europe/Berlin, or UTC`,
		`28:40: pipeline "p" schedule "i": timezone does not apply to every: every: fires at multiples of the interval since the Unix epoch, in no time zone; use cron: for local times`,
		`29:39: pipeline "p" schedule "j": payload is empty: want a jq program such as {report: "daily", day: $scheduled_time[:10]}`,
		`29:48: pipeline "p" schedule "j": key is empty: want a jq program such as $schedule`,
		`30:39: pipeline "p" schedule "k": payload: jq program does not parse: unexpected EOF`,
		`30:49: pipeline "p" schedule "k": key: jq program does not compile: variable not defined: $nope (its variables are $schedule and $scheduled_time)`,
		`31:39: pipeline "p" schedule "l": payload failed for the tick 2026-01-01T01:00:00Z (the first of 2026): error: no`,
		`31:59: pipeline "p" schedule "l": key failed for the tick 2026-01-01T01:00:00Z (the first of 2026): error: l`,
		`32:39: pipeline "p" schedule "m": payload failed for the tick 2026-01-01T01:00:00Z (the first of 2026): it has no result, or null (its first result is the record's value)`,
		`33:39: pipeline "p" schedule "n": payload failed for the tick 2026-01-01T01:00:00Z (the first of 2026): result has no exact JSON text: string at .v is not valid UTF-8`,
		`34:38: pipeline "p" schedule "o": jitter must be between 0s and 1h, got 2h`,
		`35:38: pipeline "p" schedule "q": jitter must be between 0s and 1h, got -1s`,
		`36:38: pipeline "p" schedule "r": jitter 1m must be less than every 1m, so that each fire comes before the next tick`,
		`37:39: pipeline "p" schedule "t": overlap "never": want skip (the default: no fire while the previous job from this schedule runs) or allow`,
		`37:56: pipeline "p" schedule "t": catch_up "some": want none (skip the ticks missed while no scheduler ran), latest (the default: fire the latest of them) or all (fire each, at most max_catch_up)`,
		`38:44: pipeline "p" schedule "u": max_catch_up applies to catch_up: all: set catch_up: all, or remove max_catch_up`,
		`39:75: max_catch_up must be between 1 and 10000, got 10001`,
		`40:39: enabled: want true or false, got "yes"`,
		`41:30: unknown key "colour" in schedule (known keys: name, cron, every, timezone, payload, key, jitter, overlap, catch_up, max_catch_up, enabled)`,
		`42:9: schedules: want a mapping, got a list`,
		`47:9: pipeline "q" schedule "a": ` + skipNeedsResults("q"),
		`48:39: pipeline "q" schedule "b": ` + skipNeedsResults("q"),
	},
	"group-timeouts.bad.yaml": {
		`5:20: session_timeout must be between 6s and 30m (what Kafka brokers accept by default: group.min.session.timeout.ms and group.max.session.timeout.ms), got 5s`,
		`6:22: rebalance_timeout must be between 1s and 24h, got 0s`,
		`10:22: session_timeout must be between 6s and 30m (what Kafka brokers accept by default: group.min.session.timeout.ms and group.max.session.timeout.ms), got 31m`,
		`11:24: rebalance_timeout must be between 1s and 24h, got 25h`,
		`15:26: session_timeout: want a duration like 30s or 5m, got "10"`,
		`16:28: rebalance_timeout: want a duration like 30s or 5m, got a list`,
		`19:26: session_timeout must be between 6s and 30m (what Kafka brokers accept by default: group.min.session.timeout.ms and group.max.session.timeout.ms), got -6s`,
		`20:28: rebalance_timeout must be between 1s and 24h, got 999ms`,
	},
	"syntax.bad.yaml": {
		`4:1: invalid YAML:`,
	},
	"types.bad.yaml": {
		`2:10: version: want a whole number, got "one"`,
		`3:9: broker: want a mapping, got a list`,
		`6:12: input: want a string, got a mapping`,
		`7:5: key "input" is set twice in pipeline`,
		`9:7: stages: want a list, got a mapping`,
	},
}

func TestLoad_bad_fixtures_report_every_problem_with_its_position(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.bad.yaml")
	if len(files) != len(badFixtures) {
		t.Fatalf("%d bad fixtures on disk, %d in the table", len(files), len(badFixtures))
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			want, ok := badFixtures[filepath.Base(f)]
			if !ok {
				t.Fatalf("fixture %s has no expected problems", f)
			}
			_, err := load(t, f, noEnv)
			var ps pipeline.Problems
			if !errors.As(err, &ps) {
				t.Fatalf("want Problems, got %v", err)
			}
			lines := strings.Split(ps.Error(), "\n")
			if len(lines) != len(want) {
				t.Fatalf("got %d problems, want %d:\n%s", len(lines), len(want), ps.Error())
			}
			for i, w := range want {
				if !strings.HasPrefix(lines[i], f+":"+w) {
					t.Errorf("problem %d:\n got  %s\n want %s:%s…", i+1, lines[i], f, w)
				}
			}
		})
	}
}

func TestParse_interpolates_environment_with_defaults_and_escapes(t *testing.T) {
	env := map[string]string{"TOPIC": "events", "EMPTY": ""}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	src := `version: 1
pipelines:
  - name: p
    description: "costs $${HOME} and ${EMPTY:-nothing}"
    input: ${TOPIC}
    output: ${OUT:-p.out}
    stages: [{name: s, filter: log}]
`
	f, err := pipeline.Parse("x.yaml", []byte(src), lookup)
	if err != nil {
		t.Fatal(err)
	}
	p := f.Pipelines[0]
	if p.Input != "events" || p.Output != "p.out" || p.Description != "costs ${HOME} and nothing" {
		t.Fatalf("got input %q output %q description %q", p.Input, p.Output, p.Description)
	}
}

func TestPlan_names_topics_and_groups(t *testing.T) {
	f, err := load(t, "testdata/full.good.yaml", noEnv)
	if err != nil {
		t.Fatal(err)
	}
	plan := f.Plan()
	if got := strings.Join(plan.Brokers, ","); got != "127.0.0.1:9092" {
		t.Errorf("brokers %q", got)
	}
	stages, err := plan.Stages("orders")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range stages {
		got = append(got, s.ID()+" "+s.Input+">"+s.Output+" "+s.Group)
	}
	want := []string{
		"orders/validate orders>orders.to-price millrace.orders.validate",
		"orders/price orders.to-price>orders.audit millrace.orders.price",
		"orders/audit orders.audit>orders.confirmed millrace.orders.audit",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("stages:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if stages[0].Concurrency != 4 || stages[1].Concurrency != 2 {
		t.Errorf("concurrency %d %d, want 4 (stage) and 2 (defaults)", stages[0].Concurrency, stages[1].Concurrency)
	}
	var topics []string
	for _, tp := range plan.Topics() {
		topics = append(topics, tp.Name)
		if want := 6; tp.Partitions != want && !strings.HasPrefix(tp.Name, "followup.") {
			t.Errorf("topic %s has %d partitions, want %d", tp.Name, tp.Partitions, want)
		}
	}
	if got := strings.Join(topics, " "); got != "followup.jobs followup.jobs.status followup.quarantine orders orders.audit "+
		"orders.confirmed orders.jobs orders.jobs.status orders.quarantine orders.replies orders.to-price" {
		t.Errorf("topics %s", got)
	}
	if _, err := plan.Stages("orders/nope"); err == nil || !strings.Contains(err.Error(), "orders/validate") {
		t.Errorf("unknown stage error should list stages, got %v", err)
	}
}
