package prometheus

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/millrace/millrace/internal/childproc"
)

const (
	// stopGrace is how long the stop waits after SIGTERM before SIGKILL.
	stopGrace = 10 * time.Second
	// portAttempts is how often Start tries a new port when the one it
	// picked was taken before the server bound it.
	portAttempts = 3
)

// Server is a running Prometheus server. Start stops it when the test
// ends.
type Server struct {
	addr   string
	dir    string
	config string
	client *http.Client
	log    *tailLog
	cmd    *exec.Cmd
	done   chan struct{} // closed when the server has exited
}

// Start runs a Prometheus server scraping targets (host:port, at
// /metrics, job [Job]) every second; see [StartWith].
func Start(t testing.TB, targets ...string) *Server {
	t.Helper()
	return StartWith(t, Options{Targets: targets})
}

// StartWith runs a Prometheus server configured by opts on a free
// 127.0.0.1 port with a new data directory, and waits until it is ready.
// When the test ends the server is stopped (SIGTERM, then SIGKILL) and the
// directory removed. Without a prometheus binary on PATH the test is
// skipped, or fails under CI=true.
func StartWith(t testing.TB, opts Options) *Server {
	t.Helper()
	bin := lookPath(t, "prometheus")
	opts = opts.withDefaults()
	if os.Getenv("PROMETHEUS_LOG") == "1" {
		opts.Log = os.Stderr
	}
	dir, err := childproc.OwnedTempDir("millrace-prometheus-")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{dir: dir, log: newTailLog(opts.Log), client: &http.Client{Timeout: 30 * time.Second}}
	t.Cleanup(func() {
		if err := s.stop(); err != nil {
			t.Errorf("prometheus: %v", err)
		}
		if t.Failed() {
			t.Logf("prometheus log (last lines):\n%s", s.log.Tail())
		}
	})
	for attempt := 1; ; attempt++ {
		err = s.start(bin, opts)
		if err == nil {
			return s
		}
		if !errors.Is(err, errPortTaken) || attempt == portAttempts {
			t.Fatalf("prometheus: %v", err)
		}
	}
}

// errPortTaken says the picked port was bound by someone else first.
var errPortTaken = errors.New("port taken")

// start launches the server once on a newly picked port and waits until it
// is ready.
func (s *Server) start(bin string, opts Options) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	s.addr = fmt.Sprintf("127.0.0.1:%d", port)
	s.config, err = writeConfig(s.dir, s.addr, opts)
	if err != nil {
		return err
	}
	cmd := exec.Command(bin,
		"--config.file="+s.config,
		"--storage.tsdb.path="+filepath.Join(s.dir, "data"),
		"--web.listen-address="+s.addr,
		"--log.level=info",
	)
	cmd.Dir = s.dir
	cmd.Stdout, cmd.Stderr = s.log, s.log
	cmd.WaitDelay = stopGrace
	if err := childproc.Start(cmd); err != nil {
		return fmt.Errorf("starting %s: %w", bin, err)
	}
	s.cmd, s.done = cmd, make(chan struct{})
	go func(done chan struct{}) {
		cmd.Wait()
		close(done)
	}(s.done)
	return s.waitReady(opts.StartTimeout)
}

// waitReady polls /-/ready until it answers 200, the server exits or
// timeout passes.
func (s *Server) waitReady(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last error
	for {
		resp, err := s.client.Get(s.URL() + "/-/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = errors.New(resp.Status)
		}
		last = err
		select {
		case <-s.done:
			if strings.Contains(s.log.Tail(), "address already in use") {
				return fmt.Errorf("%s: %w", s.addr, errPortTaken)
			}
			return fmt.Errorf("exited during startup (%v); last output:\n%s", s.cmd.ProcessState, s.log.Tail())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready on %s after %s (last: %v); last output:\n%s", s.addr, timeout, last, s.log.Tail())
		}
	}
}

// stop terminates the server (SIGTERM to its process group, SIGKILL after
// stopGrace), waits for it to exit and removes its directory.
func (s *Server) stop() error {
	var errs []error
	if s.cmd != nil {
		errs = append(errs, terminate(s.cmd, s.done))
	}
	if err := os.RemoveAll(s.dir); err != nil {
		errs = append(errs, fmt.Errorf("removing %s: %w", s.dir, err))
	}
	return errors.Join(errs...)
}

// terminate signals the process group of cmd and waits for it to exit:
// SIGTERM, then SIGKILL after stopGrace.
func terminate(cmd *exec.Cmd, done <-chan struct{}) error {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
		select {
		case <-done:
			return nil // exited: its process group id may be reused
		default:
		}
		if err := childproc.SignalGroup(cmd.Process.Pid, sig); err != nil {
			return err
		}
		select {
		case <-done:
			return nil
		case <-time.After(stopGrace):
		}
	}
	<-done
	return fmt.Errorf("prometheus %d ignored SIGTERM for %s; killed it", cmd.Process.Pid, stopGrace)
}

// Addr is the server's address, "127.0.0.1:<port>".
func (s *Server) Addr() string { return s.addr }

// URL is the server's base URL, "http://127.0.0.1:<port>".
func (s *Server) URL() string { return "http://" + s.addr }

// ConfigFile is the path of the prometheus.yml the server runs with.
func (s *Server) ConfigFile() string { return s.config }

// Dir is the server's temp directory (config and data), removed when the
// test ends.
func (s *Server) Dir() string { return s.dir }

// Log returns the server's last output lines.
func (s *Server) Log() string { return s.log.Tail() }

// freePort returns a port on 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// lookPath finds tool on PATH. A missing tool skips the test with the
// reason, or fails it under CI=true.
func lookPath(t testing.TB, tool string) string {
	t.Helper()
	path, err := exec.LookPath(tool)
	if err == nil {
		return path
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is required under CI=true: it is not on PATH (apt-get install prometheus; make test does it as root)", tool)
	}
	t.Skipf("SKIPPING Prometheus test: %s is not on PATH (apt-get install prometheus; make test does it as root)", tool)
	return ""
}

// tailLog forwards output to a writer and keeps its last lines.
type tailLog struct {
	out  io.Writer
	mu   sync.Mutex
	text []byte
}

// keepBytes is how much of the server's output tailLog keeps.
const keepBytes = 16 << 10

func newTailLog(out io.Writer) *tailLog {
	return &tailLog{out: out}
}

// Write implements io.Writer.
func (l *tailLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.out.Write(p) // a failing log writer must not stop the server
	l.text = append(l.text, p...)
	if len(l.text) > 2*keepBytes {
		l.text = append(l.text[:0], l.text[len(l.text)-keepBytes:]...)
	}
	return len(p), nil
}

// Tail returns the last lines kept.
func (l *tailLog) Tail() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	text := l.text
	if len(text) > keepBytes {
		text = text[len(text)-keepBytes:]
		if i := strings.IndexByte(string(text), '\n'); i >= 0 {
			text = text[i+1:]
		}
	}
	return string(text)
}
