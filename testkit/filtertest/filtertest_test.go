package filtertest_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/millrace/millrace/filters"
	"github.com/millrace/millrace/testkit/filtertest"
)

// spec makes a spec of a filter with no config whose Process is p.
func spec(name string, p func(ctx context.Context, m *filters.Message) ([]*filters.Message, error)) filters.Spec {
	return filters.Spec{
		Name:    name,
		Summary: "A filter for the tests of filtertest.",
		New:     func(filters.Config) (filters.Filter, error) { return filters.Func(p), nil },
	}
}

// upper upper-cases payloads (into new bytes), fans out on "twice", fails
// permanently on "bad" and waits for its context on "wait".
func upper(ctx context.Context, m *filters.Message) ([]*filters.Message, error) {
	switch string(m.Payload) {
	case "bad":
		return nil, filters.Permanent(errors.New("a bad record"))
	case "flaky":
		return nil, errors.New("try again")
	case "wait":
		<-ctx.Done()
		return nil, fmt.Errorf("stopped: %w", ctx.Err())
	case "twice":
		c := m.Copy()
		c.Headers.Add("copy", "2")
		return []*filters.Message{m, c}, nil
	}
	m.Payload = bytes.ToUpper(m.Payload)
	m.Headers.Set("upper", "yes")
	return []*filters.Message{m}, nil
}

func msg(key, payload string, headers ...string) *filters.Message {
	return &filters.Message{Key: []byte(key), Payload: []byte(payload), Headers: filters.HeadersOf(headers...)}
}

// cases are the cases every filter of these tests is run on.
var cases = []filtertest.Case{
	{Name: "upper-cases", In: msg("k", "abc", "h", "v"), Want: []*filters.Message{msg("k", "ABC", "h", "v", "upper", "yes")}},
	{Name: "fans out", In: msg("k", "twice", "h", "v"), Want: []*filters.Message{msg("k", "twice", "h", "v"), msg("k", "twice", "h", "v", "copy", "2")}},
	{Name: "fails permanently", In: msg("k", "bad"), Outcome: filtertest.FailsPermanently},
	{Name: "fails", In: msg("k", "flaky"), Outcome: filtertest.Fails},
	{Name: "no key", In: &filters.Message{Payload: []byte("x")}, Check: func(out []*filters.Message, err error) error {
		if err != nil || len(out) != 1 || out[0].Key != nil {
			return fmt.Errorf("got %v, %v; want one message without a key", out, err)
		}
		return nil
	}},
	{Name: "waits for its context", In: msg("k", "wait"), Blocks: true},
}

func TestRun_passes_a_filter_that_keeps_the_contract(t *testing.T) {
	filtertest.Run(t, spec("upper", upper), filtertest.Suite{Cases: cases, CancelWithin: time.Second})
}

// bad is a filter that breaks the contract, and what the suite must say.
type bad struct {
	spec  filters.Spec
	suite filtertest.Suite
	want  string // in the failing test's output
}

// badFilters are run by TestRun_fails_filters_that_break_the_contract, each
// in a test process of its own.
func badFilters() map[string]bad {
	suite := filtertest.Suite{Cases: cases, CancelWithin: 300 * time.Millisecond}
	wrap := func(name string, p func(ctx context.Context, m *filters.Message) ([]*filters.Message, error)) filters.Spec {
		return spec(name, func(ctx context.Context, m *filters.Message) ([]*filters.Message, error) {
			if out, err := p(ctx, m); out != nil || err != nil {
				return out, err
			}
			return upper(ctx, m)
		})
	}
	var shared []byte // racing's
	racing := bad{spec: wrap("racing", func(_ context.Context, m *filters.Message) ([]*filters.Message, error) {
		if p := string(m.Payload); p != "abc" && p != "x" {
			return nil, nil
		}
		shared = append(shared[:0], m.Payload...) // one buffer for every call
		time.Sleep(time.Millisecond)
		m.Payload = bytes.ToUpper(shared)
		m.Headers.Set("upper", "yes")
		return []*filters.Message{m}, nil
	}), suite: suite, want: `run concurrently with the others: output 0: payload`}
	if raceEnabled {
		racing.want = "WARNING: DATA RACE"
	}
	badExample := spec("bad-example", upper)
	badExample.Fields = []filters.Field{{Name: "program", Type: filters.String, Required: true, Description: "a program"}}
	badExample.Example = "progam: x"
	misspelt := spec("misspelt", upper)
	misspelt.Fields = []filters.Field{{Name: "program", Type: filters.String, Description: "a program"}}
	misspelt.Example = "program: x"
	misspelt.New = func(cfg filters.Config) (filters.Filter, error) {
		_ = cfg.String("progam")
		return filters.Func(upper), nil
	}
	return map[string]bad{
		"writes into the payload": {spec: wrap("in-place", func(_ context.Context, m *filters.Message) ([]*filters.Message, error) {
			if string(m.Payload) == "abc" {
				copy(m.Payload, "ABC") // into the record's bytes
				m.Headers.Set("upper", "yes")
				return []*filters.Message{m}, nil
			}
			return nil, nil
		}), suite: suite, want: `Process wrote into the bytes of the input's payload ("ABC", was "abc")`},
		"appends into the payload's capacity": {spec: wrap("appends", func(_ context.Context, m *filters.Message) ([]*filters.Message, error) {
			if string(m.Payload) == "x" {
				m.Payload = append(m.Payload, '!')
				return []*filters.Message{m}, nil
			}
			return nil, nil
		}), suite: suite, want: "appended into the spare capacity of the input's payload"},
		"writes into a header value": {spec: wrap("header-bytes", func(_ context.Context, m *filters.Message) ([]*filters.Message, error) {
			if string(m.Payload) == "abc" {
				m.Headers[0].Value[0] = 'V'
			}
			return nil, nil
		}), suite: suite, want: `wrote into the bytes of the input's header "h" value`},
		"changes the input after returning": {spec: wrap("late", func(_ context.Context, m *filters.Message) ([]*filters.Message, error) {
			if string(m.Payload) == "abc" {
				time.AfterFunc(time.Millisecond, func() { m.Key = []byte("late") })
			}
			return nil, nil
		}), suite: suite, want: `case "upper-cases": the input changed after Process returned: key "late", want "k"`},
		"changes an output after returning": {spec: wrap("late-output", func(_ context.Context, m *filters.Message) ([]*filters.Message, error) {
			if string(m.Payload) == "abc" {
				m.Payload = []byte("ABC")
				m.Headers.Set("upper", "yes")
				time.AfterFunc(time.Millisecond, func() { m.Headers.Set("upper", "no") })
				return []*filters.Message{m}, nil
			}
			return nil, nil
		}), suite: suite, want: `case "upper-cases": output 0 changed after Process returned`},
		"shares headers between outputs": {spec: wrap("shallow", func(_ context.Context, m *filters.Message) ([]*filters.Message, error) {
			if string(m.Payload) == "twice" {
				c := &filters.Message{Key: m.Key, Payload: m.Payload, Headers: append(m.Headers, filters.Header{Key: "copy", Value: []byte("2")})}
				return []*filters.Message{m, c}, nil
			}
			return nil, nil
		}), suite: suite, want: "changing the headers of output 0 changed output 1"},
		"returns one message twice": {spec: wrap("same", func(_ context.Context, m *filters.Message) ([]*filters.Message, error) {
			if string(m.Payload) == "x" {
				return []*filters.Message{m, m}, nil
			}
			return nil, nil
		}), suite: suite, want: "outputs 0 and 1 are the same *filters.Message"},
		"ignores its context": {spec: wrap("deaf", func(_ context.Context, m *filters.Message) ([]*filters.Message, error) {
			if string(m.Payload) == "wait" {
				time.Sleep(2 * time.Second)
				return nil, errors.New("done sleeping")
			}
			return nil, nil
		}), suite: suite, want: "Process did not return within 300ms of its context being cancelled: it must honour ctx"},
		"succeeds when cancelled": {spec: wrap("swallows", func(ctx context.Context, m *filters.Message) ([]*filters.Message, error) {
			if string(m.Payload) == "wait" {
				<-ctx.Done()
				return []*filters.Message{}, nil
			}
			return nil, nil
		}), suite: suite, want: "Process succeeded with its context cancelled: it must return an error"},
		"fails permanently when cancelled": {spec: wrap("gives-up", func(ctx context.Context, m *filters.Message) ([]*filters.Message, error) {
			if string(m.Payload) == "wait" {
				<-ctx.Done()
				return nil, filters.Permanent(ctx.Err())
			}
			return nil, nil
		}), suite: suite, want: "with its context past its deadline: marked permanent"},
		"loses Permanent": {spec: wrap("loses", func(_ context.Context, m *filters.Message) ([]*filters.Message, error) {
			if string(m.Payload) == "bad" {
				return nil, fmt.Errorf("record failed: %v", filters.Permanent(errors.New("a bad record")))
			}
			return nil, nil
		}), suite: suite, want: "which filters.IsPermanent does not recognise"},
		"returns the wrong output": {spec: wrap("wrong", func(_ context.Context, m *filters.Message) ([]*filters.Message, error) {
			if string(m.Payload) == "abc" {
				return []*filters.Message{msg("k", "abc", "h", "v")}, nil
			}
			return nil, nil
		}), suite: suite, want: `output 0: payload "abc", want "ABC"`},
		"panics": {spec: wrap("panics", func(_ context.Context, m *filters.Message) ([]*filters.Message, error) {
			if string(m.Payload) == "x" {
				panic("boom")
			}
			return nil, nil
		}), suite: suite, want: "Process panicked: boom"},
		"races": racing,
		"has an Example that does not parse": {spec: badExample, suite: suite,
			want: `the spec's Example of filter "bad-example", line 1: unknown config key "progam"`},
		"reads a config field it does not have": {spec: misspelt, suite: suite,
			want: `panicked: filters: filter "misspelt" has no config field "progam" (known: program)`},
	}
}

func TestRun_fails_filters_that_break_the_contract(t *testing.T) {
	for name, b := range badFilters() {
		t.Run(name, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestBadFilter$", "-test.v", "-test.count=1")
			cmd.Env = append(os.Environ(), "FILTERTEST_BAD="+name)
			out, err := cmd.CombinedOutput()
			var exit *exec.ExitError
			if !errors.As(err, &exit) {
				t.Fatalf("the suite passed the filter (%v):\n%s", err, out)
			}
			if !strings.Contains(string(out), b.want) {
				t.Fatalf("the suite failed, but its output lacks %q:\n%s", b.want, out)
			}
		})
	}
}

// TestBadFilter runs the suite on the bad filter FILTERTEST_BAD names, for
// TestRun_fails_filters_that_break_the_contract: it must fail.
func TestBadFilter(t *testing.T) {
	name := os.Getenv("FILTERTEST_BAD")
	if name == "" {
		t.Skip("run by TestRun_fails_filters_that_break_the_contract")
	}
	b, ok := badFilters()[name]
	if !ok {
		t.Fatalf("no bad filter %q", name)
	}
	filtertest.Run(t, b.spec, b.suite)
}
