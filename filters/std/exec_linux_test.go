package std_test

import (
	"bufio"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/millrace/millrace/filters"
)

// exits waits for process pid, which is not a child of the test, to exit
// and reports whether it did within 10s. A SIGKILL is delivered at once but
// acted on when the process next runs, so a killed process may still be
// running for a moment.
func exits(t *testing.T, pid int) bool {
	t.Helper()
	fd, err := unix.PidfdOpen(pid, 0)
	if errors.Is(err, unix.ESRCH) {
		return true
	}
	if err != nil {
		t.Fatalf("pidfd_open %d: %v", pid, err)
	}
	defer unix.Close(fd)
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	for {
		n, err := unix.Poll(fds, 10_000)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			t.Fatalf("poll pidfd of %d: %v", pid, err)
		}
		return n == 1
	}
}

func TestExec_kills_processes_left_behind(t *testing.T) {
	// The background sleep holds stdout, so Process cannot return before it
	// is gone.
	f := build(t, "exec", shell("sleep 300 & echo $!"))
	out, err := f.Process(context.Background(), &filters.Message{})
	if err != nil {
		t.Fatalf("Process: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(out[0].Payload)))
	if err != nil {
		t.Fatalf("output %q: %v", out[0].Payload, err)
	}
	if !exits(t, pid) {
		t.Errorf("process %d left behind still runs", pid)
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}

func TestExec_kills_process_group_on_cancel(t *testing.T) {
	// The script reports the pid of its child through a FIFO, then waits;
	// the test cancels once it has read the pid.
	fifo := filepath.Join(t.TempDir(), "pid")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	f := build(t, "exec", shell(`sleep 300 & echo $! > "$PIDFIFO"; wait`, "env: {PIDFIFO: '"+fifo+"'}"))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pids := make(chan int, 1)
	var wg sync.WaitGroup
	wg.Go(func() {
		defer cancel()
		r, err := os.Open(fifo) // blocks until the script opens it
		if err != nil {
			t.Error(err)
			return
		}
		defer r.Close()
		line, _ := bufio.NewReader(r).ReadString('\n')
		pid, err := strconv.Atoi(strings.TrimSpace(line))
		if err != nil {
			t.Errorf("pid %q: %v", line, err)
			return
		}
		pids <- pid
	})
	_, err := f.Process(ctx, &filters.Message{})
	// Should the script have failed before opening the FIFO, opening it
	// here unblocks the reader.
	if w, err := os.OpenFile(fifo, os.O_RDWR, 0); err == nil {
		w.Close()
	}
	wg.Wait()
	if !errors.Is(err, context.Canceled) || filters.IsPermanent(err) {
		t.Errorf("Process error = %v, want a retryable context.Canceled", err)
	}
	select {
	case pid := <-pids:
		if !exits(t, pid) {
			t.Errorf("child %d still runs after cancel", pid)
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	default:
		t.Error("no pid read from the script")
	}
}

// TestExec_kills_process_group_when_it_must_stop checks that a run stopped
// by the filter (timeout, too much output) leaves no process behind: the
// script starts a background sleep, which holds no pipe, writes its pid to
// a file and goes on until it is killed.
func TestExec_kills_process_group_when_it_must_stop(t *testing.T) {
	tests := []struct {
		name, script, config, want string
		permanent                  bool
	}{
		{"timeout", "wait", "timeout: 1s", "timed out after 1s", false},
		{"too much output", "yes", "max_output_bytes: 65536", "output exceeds max_output_bytes 64 KiB", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pidFile := filepath.Join(t.TempDir(), "pid")
			script := `sleep 300 </dev/null >/dev/null 2>&1 & echo $! > "$PIDFILE"; ` + tt.script
			f := build(t, "exec", shell(script, "env: {PIDFILE: '"+pidFile+"'}", tt.config))
			_, err := f.Process(context.Background(), &filters.Message{})
			if err == nil || !strings.Contains(err.Error(), tt.want) || filters.IsPermanent(err) != tt.permanent {
				t.Fatalf("Process error = %v, want %q (permanent %v)", err, tt.want, tt.permanent)
			}
			b, err := os.ReadFile(pidFile)
			if err != nil {
				t.Fatal(err)
			}
			pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
			if err != nil {
				t.Fatalf("pid %q: %v", b, err)
			}
			if !exits(t, pid) {
				t.Errorf("background process %d still runs", pid)
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		})
	}
}
