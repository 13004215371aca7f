package pipeline_test

import (
	"strings"
	"testing"
)

// TestParse_never_shows_a_value_from_the_environment feeds bad values
// through ${S} and checks that no problem shows them, while the problem
// about each still names the reference.
func TestParse_never_shows_a_value_from_the_environment(t *testing.T) {
	tests := []struct {
		name   string
		secret string // the value of $S
		yaml   string // "%s" is where ${S} is written
		want   string // the problem about it, after "line:col: "
	}{
		{"a bad duration", "hunter2-canary", `defaults: {timeout: "%s"}`,
			`timeout: want a duration like 30s or 5m, got "${S}"`},
		{"a duration out of range", "99h17m", `defaults: {timeout: "%s"}`,
			`timeout must be between 0s (no limit) and 24h, got ${S}`},
		{"a bad number", "hunter2-canary", `defaults: {partitions: "%s"}`,
			`partitions: want a whole number, got "${S}"`},
		{"a number out of range", "987654", `defaults: {partitions: "%s"}`,
			`partitions must be between 1 and 10000, got ${S}`},
		{"a fraction out of range", "1.987654", `defaults: {retry: {backoff: {jitter: "%s"}}}`,
			`jitter must be between 0 and 1 (a fraction of the delay), got ${S}`},
		{"a retry tier out of range", "987h", `defaults: {retry: {tiers: ["%s"]}}`,
			`retry tier 1 must be between 10ms and 168h, got ${S}`},
		{"an unknown compression", "hunter2-canary", `broker: {compression: "%s"}`,
			`compression "${S}": want none, gzip, snappy, lz4 or zstd`},
		{"a bad broker address", "hunter2-canary", `broker: {brokers: ["%s"]}`,
			`broker 1 ("${S}") needs host:port`},
		{"an unknown ordering", "hunter2-canary", `defaults: {ordering: "%s"}`,
			`ordering "${S}": want key (records of one key in order) or none`},
		{"a bad topic name", "hunter2 canary", `pipelines: [{name: p, input: "%s.in", stages: [{name: a, filter: log}]}]`,
			`pipeline "p": input "${S}.in" is not a valid Kafka topic name`},
		{"a bad pipeline name", "Hunter2Canary", `pipelines: [{name: "%s", input: in, stages: [{name: a, filter: log}]}]`,
			`pipeline name "${S}" must be lowercase`},
		{"a good pipeline name in other problems", "hunter2-canary", `pipelines: [{name: "%s", input: in, stages: [{name: a, filter: nope}]}]`,
			`pipeline "${S}" stage "a": unknown filter "nope"`},
		{"an unknown filter", "hunter2-canary", `pipelines: [{name: p, input: in, stages: [{name: a, filter: "%s"}]}]`,
			`pipeline "p" stage "a": unknown filter "${S}"`},
		{"a colliding topic", "hunter2_canary", `pipelines: [{name: p, input: hunter2.canary, stages: [{name: a, filter: log}]}, {name: q, input: "%s", stages: [{name: a, filter: log}]}]`,
			`topic "${S}" (the input of pipeline "q") collides with "hunter2.canary"`},
		{"a jq program that does not parse", "hunter2canary |||", `pipelines: [{name: p, input: in, stages: [{name: a, filter: jq, config: {program: "%s"}}]}]`,
			`pipeline "p" stage "a": filter "jq": program: `},
		{"a jq program that does not compile", "hunter2canary(1)", `pipelines: [{name: p, input: in, stages: [{name: a, filter: jq, config: {program: "%s"}}]}]`,
			`pipeline "p" stage "a": filter "jq": refused a value from ${S} (the message is not shown: it would show part of the value)`},
		{"an exec program that is not there", "/hunter2/canary", `pipelines: [{name: p, input: in, stages: [{name: a, filter: exec, config: {command: ["%s"]}}]}]`,
			`pipeline "p" stage "a": filter "exec": command: program ${S}: `},
		{"a bad filter config number", "hunter2-canary", `pipelines: [{name: p, input: in, stages: [{name: a, filter: log, config: {max_bytes: "%s"}}]}]`,
			`pipeline "p" stage "a": max_bytes: want a whole number, got "${S}"`},
		{"a dedup key that does not compile", "hunter2canary(1)", `pipelines: [{name: p, input: in, stages: [{name: a, filter: log, dedup: {key: "%s"}}]}]`,
			`pipeline "p" stage "a": dedup key: refused a value from ${S}`},
		{"a bad priority name", "Hunter2Canary", `pipelines: [{name: p, input: in, priority: [{topic: hi, name: "%s"}], stages: [{name: a, filter: log}]}]`,
			`pipeline "p" priority entry 1: name "${S}" must be lowercase`},
		{"a backoff max below initial", "1ms", `defaults: {retry: {backoff: {max: "%s"}}}`,
			`backoff max ${S} is less than initial 200ms (the default initial)`},
		{"a window out of range", "987h", `pipelines: [{name: p, input: in, stages: [{name: a, filter: log, dedup: {key: .id, window: "%s"}}]}]`,
			`window must be more than 0s and at most 720h, got ${S}`},
		{"a replication factor", "-7", `defaults: {replication_factor: "%s"}`,
			`replication_factor must be -1 (the broker's default) or at least 1, got ${S}`},
		{"a results keep out of range", "-987h", `pipelines: [{name: p, input: in, results: {keep: "%s"}, stages: [{name: a, filter: log}]}]`,
			`keep must be more than 0s and at most 876000h, got ${S}`},
		{"a bad reply topic", "hunter2 canary", `pipelines: [{name: p, input: in, results: {reply_topics: ["%s"]}, stages: [{name: a, filter: log}]}]`,
			`pipeline "p" results: reply topic "${S}" is not a valid Kafka topic name`},
		{"a reply topic that is a derived topic", "p.quarantine", `pipelines: [{name: p, input: in, results: {reply_topics: ["%s"]}, stages: [{name: a, filter: log}]}]`,
			`topic "${S}" (a reply topic of pipeline "p") is also the quarantine topic of pipeline "p"`},
		{"a reply_max_bytes out of range", "9876543", `pipelines: [{name: p, input: in, results: {reply_max_bytes: "%s"}, stages: [{name: a, filter: log}]}]`,
			`reply_max_bytes must be between 0 and 1048576, got ${S}`},
		{"a callback url that is not http", "ftp://hunter2.canary/x", `pipelines: [{name: p, input: in, results: {callback: {url: "%s", secret: x}, callback_hosts: [h]}, stages: [{name: a, filter: log}]}]`,
			`pipeline "p" results: callback url "${S}": want an http or https URL with a host`},
		{"a callback url whose host is not allowed", "https://hunter2.canary/x", `pipelines: [{name: p, input: in, results: {callback: {url: "%s", secret: x}, callback_hosts: [h]}, stages: [{name: a, filter: log}]}]`,
			`pipeline "p" results: callback url "${S}": its host is not one of callback_hosts (allowed: h)`},
		{"a callback host that is not allowed", "hunter2.canary", `pipelines: [{name: p, input: in, results: {callback: {url: "https://h/x", secret: x}, callback_hosts: ["%s"]}, stages: [{name: a, filter: log}]}]`,
			`pipeline "p" results: callback url "https://h/x": host "h" is not one of callback_hosts (allowed: ${S})`},
		{"a bad callback host", "hunter2:canary", `pipelines: [{name: p, input: in, results: {callback: {url: "https://h/x", secret: x}, callback_hosts: ["%s", h]}, stages: [{name: a, filter: log}]}]`,
			`pipeline "p" results: callback_hosts entry 1 "${S}": want a host name`},
		{"a callback timeout", "-9s", `pipelines: [{name: p, input: in, results: {callback: {url: "https://h/x", secret: x, timeout: "%s"}, callback_hosts: [h]}, stages: [{name: a, filter: log}]}]`,
			`timeout must be more than 0s, got ${S}`},
		{"a callback retry max below initial", "1ms", `pipelines: [{name: p, input: in, results: {callback: {url: "https://h/x", secret: x, retry: {max: "%s"}}, callback_hosts: [h]}, stages: [{name: a, filter: log}]}]`,
			`retry max ${S} is less than initial 1s (the default initial)`},
		{"a bad schedule name", "Hunter2Canary", `pipelines: [{name: p, input: in, results: {}, stages: [{name: a, filter: log}], schedules: [{name: "%s", every: 1h}]}]`,
			`schedule name "${S}" must be lowercase`},
		{"a cron spec that does not parse", "hunter2 canary", `pipelines: [{name: p, input: in, results: {}, stages: [{name: a, filter: log}], schedules: [{name: s, cron: "%s"}]}]`,
			`pipeline "p" schedule "s": invalid cron spec "${S}": `},
		{"an unknown timezone", "Hunter2/Canary", `pipelines: [{name: p, input: in, results: {}, stages: [{name: a, filter: log}], schedules: [{name: s, cron: "@daily", timezone: "%s"}]}]`,
			`pipeline "p" schedule "s": unknown timezone "${S}": want an IANA time zone name`},
		{"a schedule jitter out of range", "-9s", `pipelines: [{name: p, input: in, results: {}, stages: [{name: a, filter: log}], schedules: [{name: s, every: 1h, jitter: "%s"}]}]`,
			`pipeline "p" schedule "s": jitter must be between 0s and 1h, got ${S}`},
		{"a jitter not under every", "59m", `pipelines: [{name: p, input: in, results: {}, stages: [{name: a, filter: log}], schedules: [{name: s, every: "%s", jitter: "%s"}]}]`,
			`pipeline "p" schedule "s": jitter ${S} must be less than every ${S}`},
		{"an unknown overlap", "hunter2-canary", `pipelines: [{name: p, input: in, results: {}, stages: [{name: a, filter: log}], schedules: [{name: s, every: 1h, overlap: "%s"}]}]`,
			`pipeline "p" schedule "s": overlap "${S}": want skip`},
		{"a payload that does not compile", "hunter2canary(1)", `pipelines: [{name: p, input: in, results: {}, stages: [{name: a, filter: log}], schedules: [{name: s, every: 1h, payload: "%s"}]}]`,
			`pipeline "p" schedule "s": payload: jq program does not compile: refused a value from ${S}`},
		{"a key that fails with the schedule's name", "hunter2-canary", `pipelines: [{name: p, input: in, results: {}, stages: [{name: a, filter: log}], schedules: [{name: "%s", every: 1h, key: "$schedule | error"}]}]`,
			`pipeline "p" schedule "${S}": key failed for the tick 2026-01-01T01:00:00Z (the first of 2026): error: ${S}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := func(k string) (string, bool) { return tt.secret, k == "S" }
			src := "version: 1\n" + strings.ReplaceAll(tt.yaml, "%s", "${S}") + "\n"
			if !strings.Contains(src, "pipelines:") {
				src += "pipelines: [{name: p, input: in, stages: [{name: a, filter: log}]}]\n"
			}
			got := problemsIn(t, src, env)
			found := false
			for _, p := range got {
				if strings.Contains(p, tt.secret) {
					t.Errorf("a problem shows the value of $S (%q):\n%s", tt.secret, p)
				}
				_, msg, _ := strings.Cut(p, " ")
				found = found || strings.HasPrefix(msg, tt.want)
			}
			if !found {
				t.Errorf("no problem starts %q; got:\n%s", tt.want, strings.Join(got, "\n"))
			}
		})
	}
}
