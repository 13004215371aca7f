package pipeline_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/millrace/millrace/pipeline"
)

// fuzzSecret is the value of ${SECRET} while fuzzing: no problem may show it.
const fuzzSecret = "Zq9xK7"

func fuzzEnv(name string) (string, bool) {
	switch name {
	case "SECRET":
		return fuzzSecret, true
	case "EMPTY":
		return "", true
	case "TOPIC":
		return "t.in", true
	}
	return "", false
}

// FuzzParse checks that Parse never panics, that a file it accepts can be
// planned, and that a file it refuses gets at least one problem, each at a
// real position and none showing a value from the environment.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.yaml")
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, s := range []string{
		"", "~", "null", "--- !", "---", "-", "# comment\n", "version: 1\n---\nversion: 1\n",
		"version: 1\npipelines:\n  - name: p\n    input: p.in\n    stages:\n      - {name: a, filter: log}\n      -\n",
		"version: 1\npipelines:\n  - name: web.clicks\n    input: web.clicks\n    stages: [{name: a, filter: log}, {name: b, filter: log}]\n" +
			"  - name: web_clicks\n    input: web_clicks\n    stages: [{name: a, filter: log}, {name: b, filter: log}]\n",
		"version: 1\nbroker: {brokers: [\"${SECRET}\"], compression: \"${SECRET}\"}\ndefaults: {timeout: \"${SECRET}\", partitions: \"${SECRET}\"}\n" +
			"pipelines: [{name: \"${SECRET}\", input: \"${SECRET} x\", ${SECRET}: 1, stages: [{name: a, filter: jq, config: {program: \"${SECRET}(\"}}]}]\n",
		"version: 1\npipelines: [{name: p, input: \"${TOPIC}\", stages: [{name: a, filter: log, session_timeout: 1s, rebalance_timeout: 25h}]}]\n",
		"version: 1\npipelines: [{name: p, input: p.in, results: {keep: \"${SECRET}\", reply_topics: [\"${SECRET}\", p.quarantine], " +
			"callback: {url: \"https://${SECRET}/x\", secret: \"${SECRET}\"}, callback_hosts: [\"${SECRET}\"]}, stages: [{name: jobs, filter: log}]}]\n",
		"version: 1\npipelines: [{name: p, input: millrace_schedules, stages: [{name: a, filter: log}], schedules: [{name: \"${SECRET}\", " +
			"cron: \"${SECRET}\", timezone: \"${SECRET}\", every: 1s, payload: \"$schedule | error\", key: \"${SECRET}\", enabled: yes}]}]\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := pipeline.Parse("f.yaml", data, fuzzEnv)
		if err == nil {
			plan := file.Plan()
			plan.Topics()
			if _, err := plan.Stages(); err != nil {
				t.Fatalf("a valid file's plan: %v", err)
			}
			return
		}
		var ps pipeline.Problems
		if !errors.As(err, &ps) {
			t.Fatalf("want Problems, got %T: %v", err, err)
		}
		if len(ps) == 0 {
			t.Fatalf("an error with no problems")
		}
		secretOnlyFromEnv := !bytes.Contains(data, []byte(fuzzSecret)) && !bytes.ContainsAny(data, `\%`)
		for _, p := range ps {
			if p.Pos.Line < 1 || p.Pos.Column < 1 || p.File != "f.yaml" || p.Message == "" {
				t.Errorf("problem without a real position or message: %q", p.String())
			}
			if secretOnlyFromEnv && strings.Contains(p.Message, fuzzSecret) {
				t.Errorf("problem shows the value of ${SECRET}: %s", p.String())
			}
		}
	})
}
