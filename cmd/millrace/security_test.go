package main_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/millrace/millrace/testkit"
)

// secureBroker is the broker block of a pipelines file for b, a secure
// backend: its brokers, TLS trusting caFile, and SASL as b's user with the
// password taken from $KAFKA_PASSWORD, as the README tells users to write it.
func secureBroker(b testkit.Backend, caFile string) string {
	return fmt.Sprintf(`broker:
  brokers: [%s]
  tls: {ca_file: %q}
  sasl: {mechanism: %s, username: %s, password: "${KAFKA_PASSWORD}"}
`, strings.Join(b.Brokers, ", "), caFile, b.Security.SASL.Mechanism, b.Security.SASL.Username)
}

// ran is a command that ran to completion.
type ran struct {
	args   []string
	stdout string
	stderr string
	code   int
	took   time.Duration
}

func (r ran) String() string {
	return fmt.Sprintf("millrace %s: exit %d after %s\nstdout:\n%sstderr:\n%s",
		strings.Join(r.args, " "), r.code, r.took.Round(time.Millisecond), r.stdout, r.stderr)
}

// cliEnv is cli with env added to the environment, bounded by two minutes.
func cliEnv(t *testing.T, dir string, env []string, stdin string, args ...string) ran {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	begin := time.Now()
	err := cmd.Run()
	r := ran{args: args, stdout: out.String(), stderr: errb.String(), took: time.Since(begin)}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("millrace %s: %v", strings.Join(args, " "), err)
	}
	if ctx.Err() != nil {
		t.Fatalf("millrace %s did not finish within 2 minutes:\n%s", strings.Join(args, " "), r)
	}
	return r
}

// TestSecurity_run_produce_tail_over_secure_brokers runs the real binary
// against brokers that want TLS and SCRAM-SHA-512, with the password only
// in the environment (${KAFKA_PASSWORD} in the file): `millrace run` of a
// jq stage, with the HTTP API (--api-addr), `millrace produce` of 200
// records and one more submitted over HTTP, and `millrace tail` of the
// output shows every one of them once, through the stage.
func TestSecurity_run_produce_tail_over_secure_brokers(t *testing.T) {
	testkit.ForEachSecureBackend(t, func(t *testing.T, b testkit.Backend) {
		const n = 200
		dir := t.TempDir()
		name := "sec-" + testkit.Unique()
		env := []string{"KAFKA_PASSWORD=" + b.Security.SASL.Password}
		writeFile(t, dir, "pipelines.yaml", "version: 1\n"+secureBroker(b, b.Security.TLS.CAFile)+fmt.Sprintf(`pipelines:
  - name: %[1]s
    input: %[1]s.in
    output: %[1]s.out
    partitions: 2
    stages:
      - {name: tag, filter: jq, config: {program: '.tagged = true'}}
`, name))
		run := start(t, "run", dir, env, "run", "--api-addr", "127.0.0.1:0")
		api := "http://" + apiAddr(t, run)
		run.waitLog("stage ready", 1, time.Minute)

		var lines strings.Builder
		for i := range n {
			fmt.Fprintf(&lines, `{"seq":%d,"k":"k%d"}`+"\n", i, i%7)
		}
		if r := cliEnv(t, dir, env, lines.String(), "produce", "--pipeline", name, "--key-jq", ".k"); r.code != 0 ||
			!strings.Contains(r.stdout, fmt.Sprintf("sent %d records to %s.in", n, name)) {
			t.Fatalf("produce: want exit 0 and %d records sent\n%s", n, r)
		}
		// One more through the HTTP API of the run process.
		submitted(t, call(t, "POST", api+"/v1/pipelines/"+name+"/jobs", fmt.Sprintf(`{"seq":%d,"k":"k%d"}`, n, n%7)))
		b.Read(t, name+".out", n+1, 2*time.Minute) // the stage is through

		r := cliEnv(t, dir, env, "", "tail", name+".out", "--from-beginning", "--exit", "--json")
		if r.code != 0 {
			t.Fatalf("tail: want exit 0\n%s", r)
		}
		seen := map[int]int{}
		sc := bufio.NewScanner(strings.NewReader(r.stdout))
		for sc.Scan() {
			var rec struct {
				Key     string `json:"key"`
				Payload string `json:"payload"`
			}
			var v struct {
				Seq    int    `json:"seq"`
				K      string `json:"k"`
				Tagged bool   `json:"tagged"`
			}
			if err := json.Unmarshal(sc.Bytes(), &rec); err != nil || json.Unmarshal([]byte(rec.Payload), &v) != nil ||
				!v.Tagged || (v.Seq < n && rec.Key != v.K) {
				t.Fatalf("tail printed %s: want a record through the stage, keyed by its k if produced", sc.Text())
			}
			seen[v.Seq]++
		}
		for i := range n + 1 {
			if seen[i] != 1 {
				t.Fatalf("record %d is in the output %d times, want once (tail printed %d lines)", i, seen[i], len(seen))
			}
		}
		t.Logf("%s: %d records produced and 1 submitted over HTTP, run through a jq stage and tailed over %s", b.Name, n, b.Security.Protocol())
		run.stop(30 * time.Second)
	})
}

// TestSecurity_refused_credentials_and_untrusted_certificates_fail_at_once:
// with a wrong password, `millrace run` (told to wait for the brokers for
// ever: --connect-timeout 0) and a client command exit 1 within 30 s,
// saying SASL SCRAM-SHA-512 authentication failed, without showing the
// password they tried; with a CA that did not sign the broker's
// certificate, they exit 1 saying the certificate did not verify.
func TestSecurity_refused_credentials_and_untrusted_certificates_fail_at_once(t *testing.T) {
	testkit.ForEachSecureBackend(t, func(t *testing.T, b testkit.Backend) {
		dir := t.TempDir()
		topic := "sec-" + testkit.Unique()
		file := "version: 1\n" + secureBroker(b, b.Security.TLS.CAFile) + fmt.Sprintf(`pipelines:
  - name: %[1]s
    input: %[1]s.in
    stages:
      - {name: tag, filter: jq, config: {program: .}}
`, topic)
		writeFile(t, dir, "pipelines.yaml", file)
		writeFile(t, dir, "untrusted.yaml", strings.Replace(file, b.Security.TLS.CAFile, testkit.ThrowawayCA(t), 1))
		wrong := "wrong-password-" + testkit.Unique()
		commands := map[string][]string{
			"run":  {"run", "--connect-timeout", "0", "--admin-addr", "off", "--log-level", "debug"},
			"tail": {"tail", topic + ".in", "--exit", "--connect-timeout", "0", "--log-level", "debug"},
		}
		for _, c := range []struct {
			name string
			file string
			env  []string
			want []string
		}{
			{"wrong password", "pipelines.yaml", []string{"KAFKA_PASSWORD=" + wrong},
				[]string{"SASL", b.Security.SASL.Mechanism, "authentication", `as user "` + b.Security.SASL.Username + `"`}},
			{"untrusted CA", "untrusted.yaml", []string{"KAFKA_PASSWORD=" + b.Security.SASL.Password},
				[]string{"TLS", "certificate did not verify", "x509: certificate signed by unknown authority"}},
		} {
			for _, cmd := range []string{"run", "tail"} {
				t.Run(c.name+"/"+cmd, func(t *testing.T) {
					r := cliEnv(t, dir, c.env, "", append(commands[cmd], "-f", c.file)...)
					t.Logf("%s: %s: exit %d after %s: %s", b.Name, cmd, r.code, r.took.Round(time.Millisecond), lastLine(r.stderr))
					if r.code != 1 {
						t.Errorf("exit %d, want 1", r.code)
					}
					if r.took >= 30*time.Second {
						t.Errorf("it took %s to give up, want < 30s", r.took)
					}
					for _, w := range c.want {
						if !strings.Contains(r.stderr, w) {
							t.Errorf("stderr does not say %q", w)
						}
					}
					if strings.Contains(r.stdout+r.stderr, wrong) {
						t.Errorf("the output shows the password tried")
					}
					if t.Failed() {
						t.Logf("%s", r)
					}
				})
			}
		}
	})
}

// lastLine is the last line of s that is not empty.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// syncBuffer is a bytes.Buffer that a process writes while a test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startCapture is start, keeping stdout as well as the log (stderr).
func startCapture(t *testing.T, name, dir string, env []string, args ...string) (*proc, *syncBuffer) {
	t.Helper()
	stdout := &syncBuffer{}
	return startExeOut(t, bin, name, dir, env, stdout, args...), stdout
}
