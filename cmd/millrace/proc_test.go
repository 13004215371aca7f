package main_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/millrace/millrace/testkit"
)

// bin is the millrace binary built for these tests.
var bin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "millrace-bin-")
	if err != nil {
		panic(err)
	}
	bin = filepath.Join(dir, "millrace")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build millrace: %v\n%s", err, out)
		os.Exit(1)
	}
	code := runTests(m)
	os.RemoveAll(dir)
	os.Exit(code)
}

// proc is a millrace process whose stderr is kept for waiting on log lines.
type proc struct {
	t    *testing.T
	name string
	cmd  *exec.Cmd
	mu   sync.Mutex
	log  bytes.Buffer
	done chan struct{}
	err  error
	// quiet: a failed test does not print the log (the test keeps it
	// elsewhere, e.g. the fault tests' log directory).
	quiet bool
}

func start(t *testing.T, name, dir string, env []string, args ...string) *proc {
	t.Helper()
	return startExe(t, bin, name, dir, env, args...)
}

// startExe is start for another binary than bin (a user's own, with
// filters of its own).
func startExe(t *testing.T, exe, name, dir string, env []string, args ...string) *proc {
	t.Helper()
	return startExeOut(t, exe, name, dir, env, io.Discard, args...)
}

// startExeOut is startExe, writing the process's stdout to stdout.
func startExeOut(t *testing.T, exe, name, dir string, env []string, stdout io.Writer, args ...string) *proc {
	t.Helper()
	if len(args) > 0 && (args[0] == "run" || args[0] == "broker" || args[0] == "serve" || args[0] == "scheduler") &&
		!slices.Contains(args, "--admin-addr") {
		// The default admin port is one per machine: tests take any.
		args = append(args, "--admin-addr", "127.0.0.1:0")
	}
	p := &proc{t: t, name: name, cmd: exec.Command(exe, args...), done: make(chan struct{})}
	p.cmd.Dir = dir
	p.cmd.Env = append(os.Environ(), env...)
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	p.cmd.Stdout = stdout
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			p.mu.Lock()
			p.log.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
		}
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() && !p.quiet {
			t.Logf("%s log:\n%s", p.name, p.logText())
		}
	})
	return p
}

func (p *proc) logText() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.log.String()
}

// waitLog waits until the log holds n lines containing s.
func (p *proc) waitLog(s string, n int, timeout time.Duration) {
	p.t.Helper()
	deadline := time.After(timeout)
	for strings.Count(p.logText(), s) < n {
		select {
		case <-p.done:
			p.t.Fatalf("%s exited (%v) before logging %q:\n%s", p.name, p.err, s, p.logText())
		case <-deadline:
			p.t.Fatalf("%s did not log %q %d times within %s:\n%s", p.name, s, n, timeout, p.logText())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// stop sends SIGTERM and requires a clean exit.
func (p *proc) stop(timeout time.Duration) {
	p.t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(timeout):
		p.t.Fatalf("%s did not stop within %s after SIGTERM", p.name, timeout)
	}
	if p.err != nil {
		p.t.Fatalf("%s exited with %v after SIGTERM:\n%s", p.name, p.err, p.logText())
	}
}

// cli runs one millrace command to completion.
func cli(t *testing.T, dir, stdin string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errb.String(), code
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func writeFile(t *testing.T, dir, name, text string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// startBroker runs `millrace broker` on port with its data under dir (the
// default .millrace/broker there) and waits until it is ready. It returns
// the process, named name in logs, and a backend for it.
func startBroker(t *testing.T, name, dir string, port int) (*proc, testkit.Backend) {
	t.Helper()
	p := start(t, name, dir, nil, "broker", "--port", fmt.Sprint(port))
	p.waitLog("embedded broker ready", 1, 30*time.Second)
	return p, testkit.Backend{Name: "embedded", Brokers: []string{fmt.Sprintf("127.0.0.1:%d", port)}}
}
