package std_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/millrace/millrace/filters"
	"github.com/millrace/millrace/testkit/filtertest"
)

// shell returns the config of an exec filter running script with sh -c.
func shell(script string, extra ...string) string {
	return fmt.Sprintf("command: [sh, -c, %q]\n", script) + strings.Join(extra, "\n")
}

func TestExec_pipes_payload_through_command(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	tests := []struct {
		name, config string
		payload      []byte
		want         []byte
	}{
		{"cat", "command: [cat]", []byte("hello"), []byte("hello")},
		{"arguments are not split", "command: [tr, 'a-z', 'A-Z']", []byte("hello"), []byte("HELLO")},
		{"no shell expansion", `command: [echo, '$HOME *']`, nil, []byte("$HOME *\n")},
		{"large payload", "command: [cat]", big, big},
		{"empty payload", "command: [cat]", []byte{}, []byte{}},
		{"empty output", shell("cat >/dev/null"), []byte("x"), []byte{}},
		{"stdin not read", shell("echo done"), big, []byte("done\n")},
		{"binary output", shell(`printf '\000\377'`), nil, []byte{0, 0xff}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := &filters.Message{Key: []byte("k"), Payload: tt.payload, Headers: filters.HeadersOf("h", "v")}
			out, err := build(t, "exec", tt.config).Process(context.Background(), in)
			if err != nil {
				t.Fatalf("Process: %v", err)
			}
			if len(out) != 1 {
				t.Fatalf("got %d messages, want 1", len(out))
			}
			if m := out[0]; !bytes.Equal(m.Payload, tt.want) || m.Payload == nil {
				t.Errorf("payload = %.40q (nil %v), want %.40q", m.Payload, m.Payload == nil, tt.want)
			}
			if m := out[0]; string(m.Key) != "k" || m.Headers.Get("h") != "v" {
				t.Errorf("key %q headers %v, want them unchanged", m.Key, m.Headers)
			}
		})
	}
}

func TestExec_passes_record_in_environment(t *testing.T) {
	t.Setenv("MILLRACE_KEY", "inherited") // must not leak into records without a key
	t.Setenv("FROM_PARENT", "parent")
	t.Setenv("MILLRACE_ADMIN_TOKEN", "s3cret") // millrace's own secret: the command gets none
	script := `printf '%s|%s|%s|%s|%s|%s%s' "${MILLRACE_KEY-unset}" "${MILLRACE_JOB-unset}" "$MILLRACE_PIPELINE" "$MILLRACE_STAGE" "$EXTRA" "$FROM_PARENT" "${MILLRACE_ADMIN_TOKEN-}"`
	// MILLRACE_* would take MILLRACE_KEY and the token but for the filter.
	tests := []struct {
		name    string
		key     []byte
		headers filters.Headers
		want    string
	}{
		{"key and job", []byte("order-7"), filters.HeadersOf(filters.HeaderJob, "job-1"), "order-7|job-1|orders|enrich|extra value|parent"},
		{"no key nor job", nil, nil, "unset|unset|orders|enrich|extra value|parent"},
		{"empty key", []byte{}, nil, "|unset|orders|enrich|extra value|parent"},
	}
	spec, cfg := parse(t, "exec", shell(script, "env: {EXTRA: extra value}", "inherit_env: [PATH, FROM_PARENT, 'MILLRACE_*']"))
	cfg.Pipeline, cfg.Stage = "orders", "enrich"
	f, err := spec.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := f.Process(context.Background(), &filters.Message{Key: tt.key, Headers: tt.headers})
			if err != nil {
				t.Fatalf("Process: %v", err)
			}
			if got := string(out[0].Payload); got != tt.want {
				t.Errorf("environment = %q, want %q", got, tt.want)
			}
		})
	}
}

// environ runs the program env, with no shell, through an exec filter of
// config and returns the command's environment.
func environ(t *testing.T, config string) map[string]string {
	t.Helper()
	out, err := build(t, "exec", config).Process(context.Background(), &filters.Message{})
	if err != nil {
		t.Fatalf("Process: %v", err)
	}
	env := map[string]string{}
	for line := range strings.Lines(string(out[0].Payload)) {
		name, value, _ := strings.Cut(strings.TrimSuffix(line, "\n"), "=")
		env[name] = value
	}
	return env
}

func TestExec_inherits_only_the_listed_environment(t *testing.T) {
	// Secrets of millrace's own, as a stage's environment holds them.
	t.Setenv("KAFKA_PASSWORD", "hunter2")
	t.Setenv("API_TOKEN", "tok-123")
	t.Setenv("MILLRACE_ADMIN_TOKEN", "s3cret")
	t.Setenv("MILLRACE_SASL_PASSWORD", "kafka-s3cret")
	t.Setenv("MILLRACE_KEY", "inherited")
	// The default set.
	t.Setenv("HOME", "/home/millrace")
	t.Setenv("LANG", "C.UTF-8")
	t.Setenv("LC_MESSAGES", "C")
	t.Setenv("TZ", "UTC")
	t.Setenv("TMPDIR", "/tmp/millrace")
	t.Setenv("PYTHONPATH", "/srv/lib")
	tests := []struct {
		name, config string
		want         map[string]string // name: value; "" is absent
		only         func(name string) bool
	}{
		{
			name:   "the default set",
			config: "command: [env]",
			want: map[string]string{"PATH": os.Getenv("PATH"), "HOME": "/home/millrace", "LANG": "C.UTF-8", "LC_MESSAGES": "C",
				"TZ": "UTC", "TMPDIR": "/tmp/millrace", "KAFKA_PASSWORD": "", "API_TOKEN": "", "PYTHONPATH": "", "MILLRACE_ADMIN_TOKEN": ""},
			only: func(name string) bool {
				return slices.Contains([]string{"PATH", "HOME", "LANG", "TZ", "TMPDIR", "MILLRACE_PIPELINE", "MILLRACE_STAGE"}, name) ||
					strings.HasPrefix(name, "LC_")
			},
		},
		{
			name:   "a list replaces the default",
			config: "command: [env]\ninherit_env: [PYTHONPATH, 'KAFKA_*']",
			want:   map[string]string{"PYTHONPATH": "/srv/lib", "KAFKA_PASSWORD": "hunter2", "PATH": "", "HOME": "", "API_TOKEN": ""},
		},
		{
			name:   "env wins over the inherited value",
			config: "command: [env]\ninherit_env: [TZ]\nenv: {TZ: Europe/Paris}",
			want:   map[string]string{"TZ": "Europe/Paris"},
		},
		{
			name:   "a pattern skips millrace's secrets and the variables the filter sets",
			config: "command: [env]\ninherit_env: ['MILLRACE_*']",
			want:   map[string]string{"MILLRACE_ADMIN_TOKEN": "", "MILLRACE_SASL_PASSWORD": "", "MILLRACE_KEY": ""},
		},
		{
			name:   "* passes everything but millrace's secrets",
			config: "command: [env]\ninherit_env: ['*']",
			want: map[string]string{"KAFKA_PASSWORD": "hunter2", "API_TOKEN": "tok-123", "HOME": "/home/millrace", "MILLRACE_ADMIN_TOKEN": "",
				"MILLRACE_SASL_PASSWORD": ""},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := environ(t, tt.config)
			for name, want := range tt.want {
				if got, ok := env[name]; got != want || ok != (want != "") {
					t.Errorf("%s = %q (set %v), want %q", name, got, ok, want)
				}
			}
			for name := range env {
				if tt.only != nil && !tt.only(name) {
					t.Errorf("the command got %s, which is not in the default set", name)
				}
			}
		})
	}
}

func TestExec_runs_in_dir(t *testing.T) {
	dir, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(dir, "run.sh")
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho \"ran in $(pwd)\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	want := "ran in " + dir + "\n"
	tests := []struct{ name, config string }{
		{"absolute path", fmt.Sprintf("command: [%q]\ndir: %q", script, dir)},
		{"path relative to dir", fmt.Sprintf("command: [./run.sh]\ndir: %q", dir)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := build(t, "exec", tt.config).Process(context.Background(), &filters.Message{})
			if err != nil {
				t.Fatalf("Process: %v", err)
			}
			if got := string(out[0].Payload); got != want {
				t.Errorf("output = %q, want %q", got, want)
			}
		})
	}
}

func TestExec_rejects_bad_config(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	checkFieldErrors(t, "exec", []fieldErrorCase{
		{"empty command", "command: []", "command", "empty"},
		{"empty program", "command: ['']", "command", "empty"},
		{"unknown program", "command: [millrace-no-such-program]", "command", "millrace-no-such-program"},
		{"missing relative program", "command: [./nope.sh]\ndir: /", "command", "nope.sh"},
		{"zero timeout", "command: [cat]\ntimeout: 0s", "timeout", "positive"},
		{"negative timeout", "command: [cat]\ntimeout: -1s", "timeout", "positive"},
		{"reserved variable", "command: [cat]\nenv: {MILLRACE_KEY: x}", "env", "MILLRACE_KEY"},
		{"bad variable name", "command: [cat]\nenv: {'A=B': x}", "env", "A=B"},
		{"missing dir", "command: [cat]\ndir: /no/such/dir", "dir", "no such file"},
		{"dir is a file", fmt.Sprintf("command: [cat]\ndir: %q", file), "dir", "not a directory"},
		{"empty inherited name", "command: [cat]\ninherit_env: ['']", "inherit_env", "empty"},
		{"inherited name with =", "command: [cat]\ninherit_env: ['A=B']", "inherit_env", "A=B"},
		{"* inside a name", "command: [cat]\ninherit_env: ['A*B']", "inherit_env", "A*B"},
		{"inherited admin token", "command: [cat]\ninherit_env: [MILLRACE_ADMIN_TOKEN]", "inherit_env", "admin token"},
		{"inherited Kafka password", "command: [cat]\ninherit_env: [MILLRACE_SASL_PASSWORD]", "inherit_env", "Kafka password"},
		{"inherited reserved variable", "command: [cat]\ninherit_env: [MILLRACE_STAGE]", "inherit_env", "set by the filter"},
		{"zero max_output_bytes", "command: [cat]\nmax_output_bytes: 0", "max_output_bytes", "positive"},
		{"negative max_output_bytes", "command: [cat]\nmax_output_bytes: -1", "max_output_bytes", "positive"},
	})
}

func TestExec_reports_failures(t *testing.T) {
	tests := []struct {
		name, config string
		key          []byte
		want         []string
		permanent    bool
	}{
		{"exit status", shell("echo oops >&2; exit 3"), nil,
			[]string{"command sh exited with status 3: oops"}, false},
		{"no stderr", shell("exit 1"), nil,
			[]string{"command sh exited with status 1"}, false},
		{"bad data", shell("echo 'no customer id' >&2; exit 65"), nil,
			[]string{"exited with status 65: no customer id"}, true},
		{"signal", shell("kill -9 $$"), nil,
			[]string{"command sh was killed by signal 9"}, false},
		{"timeout", shell("echo started >&2; exec sleep 300", "timeout: 50ms"), nil,
			[]string{"command sh timed out after 50ms"}, false},
		{"too much output", "command: ['yes']", nil,
			[]string{"command yes: output exceeds max_output_bytes 16 MiB (stdout 16.0 MiB, stderr 0 B); the command was killed"}, true},
		{"NUL in key", "command: [cat]", []byte("a\x00b"), []string{"NUL"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := &filters.Message{Key: tt.key, Payload: []byte("x")}
			out, err := build(t, "exec", tt.config).Process(context.Background(), in)
			if err == nil {
				t.Fatalf("Process = %d messages, want an error", len(out))
			}
			if string(in.Payload) != "x" {
				t.Errorf("failed record's payload changed to %q", in.Payload)
			}
			for _, want := range tt.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %q", err, want)
				}
			}
			if got := filters.IsPermanent(err); got != tt.permanent {
				t.Errorf("error %q: permanent %v, want %v", err, got, tt.permanent)
			}
		})
	}
}

func TestExec_limits_stdout_and_stderr_together(t *testing.T) {
	tests := []struct {
		name, script string
		want         []string // in the error; none for success
	}{
		{"stdout at the limit", "head -c 1000 /dev/zero", nil},
		{"both at the limit", "head -c 500 /dev/zero; head -c 500 /dev/zero >&2", nil},
		{"stdout over", "head -c 1001 /dev/zero", []string{"output exceeds max_output_bytes 1000 B (stdout 1001 B, stderr 0 B)"}},
		{"stderr over", "head -c 5000 /dev/zero >&2", []string{"output exceeds max_output_bytes 1000 B (stdout 0 B, stderr ", "the command was killed"}},
		{"the sum over", "head -c 600 /dev/zero; head -c 600 /dev/zero >&2", []string{"output exceeds max_output_bytes 1000 B (stdout 600 B, stderr 600 B)"}},
		{"endless stdout", "exec yes", []string{"output exceeds max_output_bytes 1000 B (stdout "}},
		{"endless stderr", "exec yes >&2", []string{"output exceeds max_output_bytes 1000 B (stdout 0 B, stderr "}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := build(t, "exec", shell(tt.script, "max_output_bytes: 1000", "timeout: 20s"))
			out, err := f.Process(context.Background(), &filters.Message{Payload: []byte("x")})
			if tt.want == nil {
				if err != nil || len(out[0].Payload) > 1000 {
					t.Fatalf("Process = %v, want success within 1000 bytes", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Process = %d bytes of output, want an error", len(out[0].Payload))
			}
			for _, want := range tt.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %q", err, want)
				}
			}
			if !filters.IsPermanent(err) {
				t.Errorf("error %q is not permanent", err)
			}
		})
	}
}

func TestExec_quotes_end_of_long_stderr(t *testing.T) {
	f := build(t, "exec", shell("i=0; while [ $i -lt 500 ]; do echo \"line $i\" >&2; i=$((i+1)); done; exit 2"))
	_, err := f.Process(context.Background(), &filters.Message{})
	if err == nil {
		t.Fatal("Process succeeded, want an error")
	}
	msg := err.Error()
	if !strings.HasSuffix(msg, "line 499") || !strings.Contains(msg, "…") || strings.Contains(msg, "line 1\n") {
		t.Errorf("error does not end with the tail of stderr: %q", msg)
	}
	if len(msg) > 1200 {
		t.Errorf("error is %d bytes long, want about 1 KiB", len(msg))
	}
}

func TestExec_is_safe_for_concurrent_use(t *testing.T) {
	f := build(t, "exec", shell(`printf '%s:' "$MILLRACE_KEY"; cat`))
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Go(func() {
			for i := range 10 {
				key, payload := fmt.Sprintf("k%d-%d", g, i), fmt.Sprintf("p%d-%d", g, i)
				out, err := f.Process(context.Background(), &filters.Message{Key: []byte(key), Payload: []byte(payload)})
				if err != nil || string(out[0].Payload) != key+":"+payload {
					errs <- fmt.Errorf("%s: got %v, %v", key, out, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestExec_conforms(t *testing.T) {
	spec, _ := filters.Lookup("exec")
	in := func(key, payload string) *filters.Message {
		m := &filters.Message{Payload: []byte(payload), Headers: filters.HeadersOf("h", "v")}
		if key != "" {
			m.Key = []byte(key)
		}
		return m
	}
	filtertest.Run(t, spec, filtertest.Suite{
		Config: `command: [sh, -c, 'case "$MILLRACE_KEY" in slow) exec sleep 30;; bad) exit 65;; flaky) exit 1;; esac; tr a-z A-Z']`,
		Cases: []filtertest.Case{
			{Name: "pipes the payload through", In: in("k", "abc"), Want: []*filters.Message{in("k", "ABC")}},
			{Name: "without a key", In: in("", "x y"), Want: []*filters.Message{in("", "X Y")}},
			{Name: "an empty payload", In: in("k", ""), Want: []*filters.Message{in("k", "")}},
			{Name: "exit 65 is permanent", In: in("bad", "abc"), Outcome: filtertest.FailsPermanently},
			{Name: "another exit is retried", In: in("flaky", "abc"), Outcome: filtertest.Fails},
			{Name: "a command that runs on", In: in("slow", "abc"), Blocks: true},
		},
	})
}
