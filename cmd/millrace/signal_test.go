package main_test

import (
	"bufio"
	"bytes"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/millrace/millrace/testkit"
)

// TestStop_each_command_says_what_it_finishes: SIGTERM stops tail and
// broker with exit 0, and neither claims to finish records in flight (the
// message of run, which has them): tail says nothing, broker that it
// saves its data.
func TestStop_each_command_says_what_it_finishes(t *testing.T) {
	dir := t.TempDir()
	broker, backend := startBroker(t, "broker", dir, freePort(t))
	backend.CreateTopic(t, "signals", 1)
	backend.Produce(t, "signals", []testkit.Record{{Value: []byte("one")}})

	cmd := exec.Command(bin, "tail", "signals", "--from-beginning", "--brokers", backend.Brokers[0])
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(out)
	if !lines.Scan() || !strings.HasSuffix(lines.Text(), "| one") { // tail is reading: its signal handler is set
		t.Fatalf("tail printed %q first", lines.Text())
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil || stderr.Len() != 0 {
			t.Fatalf("tail after SIGTERM: %v, stderr:\n%s\nwant exit 0 and nothing said (tail has no records in flight)", err, stderr.String())
		}
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatal("tail did not stop on SIGTERM")
	}

	broker.stop(30 * time.Second)
	if log := broker.logText(); strings.Contains(log, "in flight") || !strings.Contains(log, "stopping: saving the broker's data") {
		t.Fatalf("broker log after SIGTERM:\n%s\nwant 'stopping: saving the broker's data' and no word of records in flight", log)
	}
}
