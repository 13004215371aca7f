package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/itchyny/gojq"
	"github.com/spf13/cobra"

	"github.com/millrace/millrace/filters"
	"github.com/millrace/millrace/jobs"
	"github.com/millrace/millrace/kafkaops"
	"github.com/millrace/millrace/pipeline"
)

// TestHelp_examples_work_on_the_example_pipelines takes every example of
// every command's --help and runs it, in the repository's root, up to the
// call to Kafka: flags and arguments must parse into options, files (-f)
// must exist, and pipelines, stages and priorities must be those of
// pipelines.yaml. Then what the options name is checked against the
// example pipelines, run in-process on the records the examples echo into
// produce: topics given to tail and replay topic must be topics of the
// file, a --key-jq must give the pipeline's records a key, and a jq
// program an example pipes --json output into must find something in the
// record it would read (the pipeline's output, run through its stages; a
// quarantined record).
func TestHelp_examples_work_on_the_example_pipelines(t *testing.T) {
	t.Chdir("../..")
	t.Setenv("MILLRACE_BROKERS", "")
	f, err := pipeline.Load(pipeline.DefaultFile)
	if err != nil {
		t.Fatal(err)
	}
	plan := f.Plan()
	examples := helpExamples(t)
	if len(examples) < 25 {
		t.Fatalf("found %d examples; the parser lost some", len(examples))
	}
	samples := sampleInputs(t, examples)
	for _, ex := range examples {
		t.Run(ex.line, func(t *testing.T) {
			var opts any
			var out, errb bytes.Buffer
			g := &globals{stdin: strings.NewReader(ex.stdin), stdout: &out, stderr: &errb}
			g.parsed = func(_ *cobra.Command, o any) error { opts = o; return nil }
			if code, msg := g.execute(context.Background(), ex.args); code != 0 {
				t.Fatalf("exit %d: %s%s", code, errb.String(), msg)
			}
			checkExample(t, plan, samples, ex, opts)
		})
	}
}

// example is one example command line: millrace's arguments, what is
// echoed into it, the jq programs its output is piped into.
type example struct {
	line  string
	args  []string
	stdin string
	jq    []string
}

// helpExamples returns the examples of every command's --help.
func helpExamples(t *testing.T) []example {
	t.Helper()
	var examples []example
	walk(newRoot(&globals{}), func(c *cobra.Command) {
		for _, line := range strings.Split(c.Example, "\n") {
			if ex, ok := parseExample(t, c.CommandPath(), line); ok {
				examples = append(examples, ex)
			}
		}
	})
	return examples
}

func walk(c *cobra.Command, fn func(*cobra.Command)) {
	fn(c)
	for _, sub := range c.Commands() {
		walk(sub, fn)
	}
}

// parseExample reads a line of an Example: `[echo 'X' |] millrace ARGS
// [< in | > out | &] [| jq [-r] 'PROG']… [# comment]`. Lines that are
// comments or blank are no example.
func parseExample(t *testing.T, path, line string) (example, bool) {
	t.Helper()
	ex := example{line: strings.TrimSpace(line)}
	segments := shellPipeline(t, ex.line)
	if len(segments) == 0 {
		return ex, false
	}
	seen := false
	for _, words := range segments {
		switch {
		case words[0] == "echo" && !seen && len(words) == 2:
			ex.stdin = words[1] + "\n"
		case words[0] == "millrace" && !seen:
			seen = true
			for i := 1; i < len(words); i++ {
				switch words[i] {
				case "<", ">":
					i++ // a file of the user's (or made by the example)
				case "&":
				default:
					ex.args = append(ex.args, words[i])
				}
			}
		case words[0] == "jq" && seen:
			for _, w := range words[1:] {
				if !strings.HasPrefix(w, "-") {
					ex.jq = append(ex.jq, w)
					break
				}
			}
		default:
			t.Errorf("%s example %q: cannot read %q", path, ex.line, words)
		}
	}
	if !seen {
		t.Errorf("%s example %q runs no millrace command", path, ex.line)
	}
	return ex, seen
}

// shellPipeline splits a line as sh would, enough for the examples: words
// in single or double quotes, | between commands, # starting a comment.
func shellPipeline(t *testing.T, line string) [][]string {
	t.Helper()
	var segments [][]string
	var words []string
	var word strings.Builder
	inWord := false
	endWord := func() {
		if inWord {
			words = append(words, word.String())
			word.Reset()
			inWord = false
		}
	}
	for i := 0; i < len(line); i++ {
		switch c := line[i]; {
		case c == '\'' || c == '"':
			end := strings.IndexByte(line[i+1:], c)
			if end < 0 {
				t.Fatalf("unclosed quote in %q", line)
			}
			word.WriteString(line[i+1 : i+1+end])
			inWord = true
			i += end + 1
		case c == ' ' || c == '\t':
			endWord()
		case c == '#' && !inWord:
			i = len(line)
		case c == '|':
			endWord()
			segments = append(segments, words)
			words = nil
		default:
			word.WriteByte(c)
			inWord = true
		}
	}
	endWord()
	if len(words) > 0 {
		segments = append(segments, words)
	}
	return segments
}

// sampleInputs returns, per pipeline, the record the examples echo into
// `millrace produce --pipeline P`.
func sampleInputs(t *testing.T, examples []example) map[string]string {
	samples := map[string]string{}
	for _, ex := range examples {
		if len(ex.args) == 0 || ex.args[0] != "produce" || ex.stdin == "" {
			continue
		}
		for i, a := range ex.args {
			if a == "--pipeline" && i+1 < len(ex.args) {
				if !json.Valid([]byte(ex.stdin)) {
					t.Errorf("example %q echoes %q, not JSON", ex.line, ex.stdin)
				}
				samples[ex.args[i+1]] = strings.TrimSuffix(ex.stdin, "\n")
			}
		}
	}
	return samples
}

func checkExample(t *testing.T, plan *pipeline.Plan, samples map[string]string, ex example, opts any) {
	t.Helper()
	switch o := opts.(type) {
	case tailOptions:
		pl := pipelineOf(t, plan, o.Topic)
		if len(ex.jq) > 0 && !o.json {
			t.Fatalf("pipes text into jq")
		}
		for _, prog := range ex.jq {
			rec := &kafkaops.Record{Topic: o.Topic, Timestamp: time.Now(), Value: []byte(samples[pl.Name])}
			if o.Topic != pl.Input {
				rec.Value = runPipeline(t, plan, pl, samples, o.Topic)
			}
			checkJQ(t, prog, recordJSON(rec))
		}
	case quarantineOptions:
		pl := pipelineOf(t, plan, o.Topic)
		for _, prog := range ex.jq {
			if !o.json {
				t.Fatalf("pipes text into jq")
			}
			rec := &kafkaops.Record{Topic: o.Topic, Timestamp: time.Now(), Key: []byte("k"), Value: []byte(samples[pl.Name]),
				Headers: []*kafkaops.Header{{Key: []byte(filters.HeaderError), Value: []byte("timeout")},
					{Key: []byte(filters.HeaderStage), Value: []byte(pl.Stages[0].Name)}}}
			checkJQ(t, prog, recordJSON(rec))
		}
	case produceOptions:
		pl := pipelineOf(t, plan, o.Topic.Name)
		sample, ok := samples[pl.Name]
		if !ok {
			t.Fatalf("no example echoes a record into produce --pipeline %s: add one, to check this one on", pl.Name)
		}
		if ex.stdin != "" {
			sample = strings.TrimSuffix(ex.stdin, "\n")
		}
		if o.KeyOf != nil {
			if key, err := o.KeyOf([]byte(sample)); err != nil || key == nil {
				t.Fatalf("the key of %s's record %s: %q, %v; want one", pl.Name, sample, key, err)
			}
		}
	case copyOptions:
		pipelineOf(t, plan, o.From)
		pipelineOf(t, plan, o.To)
	case jobsLsOptions:
		for _, prog := range ex.jq {
			if !o.json {
				t.Fatalf("pipes text into jq")
			}
			line, err := json.Marshal([]jobs.Status{{Job: "job-1", Pipeline: o.Source.Shape.Pipeline, State: jobs.StateSucceeded}})
			if err != nil {
				t.Fatal(err)
			}
			checkJQ(t, prog, line)
		}
	}
	if len(ex.jq) > 0 {
		switch opts.(type) {
		case tailOptions, quarantineOptions, jobsLsOptions:
		default:
			t.Fatalf("jq on the output of %T is not checked", opts)
		}
	}
}

// pipelineOf returns the pipeline that reads or writes topic.
func pipelineOf(t *testing.T, plan *pipeline.Plan, topic string) *pipeline.PipelinePlan {
	t.Helper()
	for i := range plan.Pipelines {
		pl := &plan.Pipelines[i]
		if topic == pl.Output || topic == pl.Quarantine {
			return pl
		}
		for _, st := range pl.Stages {
			for _, in := range st.Inputs {
				if in.Topic == topic {
					return pl
				}
			}
		}
	}
	t.Fatalf("topic %s is not in %s", topic, pipeline.DefaultFile)
	return nil
}

// runPipeline runs the pipeline's sample record through its stages, in
// process, up to the stage writing topic, and returns the payload written
// there.
func runPipeline(t *testing.T, plan *pipeline.Plan, pl *pipeline.PipelinePlan, samples map[string]string, topic string) []byte {
	t.Helper()
	sample, ok := samples[pl.Name]
	if !ok {
		t.Fatalf("no example echoes a record into produce --pipeline %s, to run the pipeline on", pl.Name)
	}
	m := &filters.Message{Payload: []byte(sample), Headers: filters.HeadersOf(filters.HeaderJob, "job-1")}
	for _, st := range pl.Stages {
		f, err := st.Filter.New(st.Config)
		if err != nil {
			t.Fatalf("stage %s: %v", st.ID(), err)
		}
		out, err := f.Process(context.Background(), m)
		if err != nil || len(out) == 0 {
			t.Fatalf("stage %s on %s: %d records, %v", st.ID(), m.Payload, len(out), err)
		}
		m = out[0]
		if st.Output == topic {
			return m.Payload
		}
	}
	t.Fatalf("no stage of %s writes %s", pl.Name, topic)
	return nil
}

// checkJQ runs the jq program on the JSON line and wants a result that is
// neither an error nor null.
func checkJQ(t *testing.T, prog string, line []byte) {
	t.Helper()
	q, err := gojq.Parse(prog)
	if err != nil {
		t.Fatalf("jq %q: %v", prog, err)
	}
	var v any
	if err := json.Unmarshal(line, &v); err != nil {
		t.Fatal(err)
	}
	res, ok := q.Run(v).Next()
	if err, isErr := res.(error); isErr || !ok || res == nil {
		t.Fatalf("jq %q on %s gives %v (%v): want a value", prog, line, res, err)
	}
	t.Logf("jq %q → %s", prog, fmt.Sprint(res))
}

// TestExample_pipelines_write_records_as_their_last_stage_made_them runs
// each pipeline of pipelines.yaml in-process on the record the help
// examples echo into it, and wants JSON out of every stage without a
// trailing newline: the exec filter keeps a program's stdout byte for
// byte, and the example programs printed one (a "\n" at the end of every
// thumbnails record).
func TestExample_pipelines_write_records_as_their_last_stage_made_them(t *testing.T) {
	t.Chdir("../..")
	f, err := pipeline.Load(pipeline.DefaultFile)
	if err != nil {
		t.Fatal(err)
	}
	plan := f.Plan()
	examples := helpExamples(t)
	samples := sampleInputs(t, examples)
	for i := range plan.Pipelines {
		pl := &plan.Pipelines[i]
		for _, st := range pl.Stages {
			if st.Output == "" {
				continue
			}
			out := runPipeline(t, plan, pl, samples, st.Output)
			if !json.Valid(out) || bytes.HasSuffix(out, []byte("\n")) {
				t.Errorf("stage %s writes %q: want JSON without a trailing newline", st.ID(), out)
			}
		}
	}
}
