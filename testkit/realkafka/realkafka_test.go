package realkafka_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/millrace/millrace/testkit/realkafka"
)

// skipIfMissing skips the test when java or mvn is missing, except under CI.
func skipIfMissing(t *testing.T, err error) {
	t.Helper()
	missing := errors.Is(err, realkafka.ErrNoJava) || errors.Is(err, realkafka.ErrNoMaven)
	if missing && os.Getenv("CI") != "true" {
		t.Skip(err)
	}
}

// startBroker starts a broker and stops it at the end of the test.
// $REALKAFKA_VERSION picks the Kafka version; REALKAFKA_LOG=1 shows the
// broker's log on stderr.
func startBroker(t *testing.T) *realkafka.Broker {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	opts := realkafka.Options{Version: os.Getenv("REALKAFKA_VERSION")}
	if os.Getenv("REALKAFKA_LOG") == "1" {
		opts.Log = os.Stderr
	}
	b, err := realkafka.Start(ctx, opts)
	if err != nil {
		skipIfMissing(t, err)
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Stop() })
	t.Logf("kafka %s on %s, started in %s (pid %d, dir %s)",
		b.Version(), b.Addr(), b.StartupTime().Round(time.Millisecond), b.PID(), b.Dir())
	return b
}

func TestProduceConsumeAndStop(t *testing.T) {
	b := startBroker(t)
	const topic = "realkafka-test"

	cfg := sarama.NewConfig()
	cfg.Version = sarama.V2_8_0_0
	cfg.Producer.Return.Successes = true
	cfg.Producer.RequiredAcks = sarama.WaitForAll

	createTopic(t, b.Addr(), cfg, topic)
	offset := produce(t, b.Addr(), cfg, topic, "k", "hello")
	if got := consumeOne(t, b.Addr(), cfg, topic, offset); got != "hello" {
		t.Fatalf("consumed %q, want %q", got, "hello")
	}
	checkOffsetTool(t, b, topic)

	pid, dir := b.PID(), b.Dir()
	if err := b.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if err := b.Stop(); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	select {
	case <-b.Done():
	default:
		t.Fatal("Done not closed after Stop")
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("JVM %d still exists after Stop (kill 0: %v)", pid, err)
	}
	if err := syscall.Kill(-pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("process group %d still exists after Stop (kill 0: %v)", pid, err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("temp dir %s still exists after Stop (stat: %v)", dir, err)
	}
}

// createTopic creates a one-partition topic with the admin API.
func createTopic(t *testing.T, addr string, cfg *sarama.Config, topic string) {
	t.Helper()
	admin, err := sarama.NewClusterAdmin([]string{addr}, cfg)
	if err != nil {
		t.Fatalf("NewClusterAdmin: %v", err)
	}
	defer admin.Close()
	detail := &sarama.TopicDetail{NumPartitions: 1, ReplicationFactor: 1}
	if err := admin.CreateTopic(topic, detail, false); err != nil {
		t.Fatalf("CreateTopic: %v", err)
	}
}

// produce sends one record and returns its offset.
func produce(t *testing.T, addr string, cfg *sarama.Config, topic, key, value string) int64 {
	t.Helper()
	p, err := sarama.NewSyncProducer([]string{addr}, cfg)
	if err != nil {
		t.Fatalf("NewSyncProducer: %v", err)
	}
	defer p.Close()
	_, offset, err := p.SendMessage(&sarama.ProducerMessage{
		Topic: topic, Key: sarama.StringEncoder(key), Value: sarama.StringEncoder(value),
	})
	if err != nil {
		t.Fatalf("SendMessage: %v", err)
	}
	return offset
}

// consumeOne reads the record at offset of partition 0.
func consumeOne(t *testing.T, addr string, cfg *sarama.Config, topic string, offset int64) string {
	t.Helper()
	c, err := sarama.NewConsumer([]string{addr}, cfg)
	if err != nil {
		t.Fatalf("NewConsumer: %v", err)
	}
	defer c.Close()
	pc, err := c.ConsumePartition(topic, 0, offset)
	if err != nil {
		t.Fatalf("ConsumePartition: %v", err)
	}
	defer pc.Close()
	select {
	case m := <-pc.Messages():
		return string(m.Value)
	case err := <-pc.Errors():
		t.Fatalf("consume: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("no record consumed within 30s")
	}
	return ""
}

// checkOffsetTool asks Kafka's GetOffsetShell for the topic's end offset,
// on the broker's PLAINTEXT listener.
func checkOffsetTool(t *testing.T, b *realkafka.Broker, topic string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := b.RunTool(ctx, "org.apache.kafka.tools.GetOffsetShell",
		"--bootstrap-server", b.InternalAddr(), "--topic", topic)
	if err != nil {
		t.Fatalf("GetOffsetShell: %v", err)
	}
	if want := topic + ":0:1"; !strings.Contains(string(out), want) {
		t.Fatalf("GetOffsetShell printed %q, want a line %q", out, want)
	}
}

func TestBrokerExitDuringStartup(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	// A 1 MiB heap makes the JVM exit at once.
	b, err := realkafka.Start(ctx, realkafka.Options{Version: os.Getenv("REALKAFKA_VERSION"), HeapMB: 1})
	if err == nil {
		b.Stop()
		t.Fatal("Start with a 1 MiB heap succeeded")
	}
	skipIfMissing(t, err)
	if !strings.Contains(err.Error(), "exited during startup") || !strings.Contains(err.Error(), "heap") {
		t.Fatalf("error lacks the cause or the JVM's output: %v", err)
	}
	t.Logf("error (as expected): %v", err)
}

func TestMissingJava(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	_, err := realkafka.Start(context.Background(), realkafka.Options{CacheDir: t.TempDir()})
	if !errors.Is(err, realkafka.ErrNoJava) {
		t.Fatalf("Start without java: got %v, want ErrNoJava", err)
	}
}

func TestMissingMaven(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	_, _, err := realkafka.Fetch(context.Background(), realkafka.Options{CacheDir: t.TempDir()})
	if !errors.Is(err, realkafka.ErrNoMaven) {
		t.Fatalf("Fetch without mvn: got %v, want ErrNoMaven", err)
	}
}

func TestFetchUnknownVersion(t *testing.T) {
	if _, err := exec.LookPath("mvn"); err != nil {
		skipIfMissing(t, realkafka.ErrNoMaven)
		t.Fatal(err)
	}
	cache := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	_, _, err := realkafka.Fetch(ctx, realkafka.Options{Version: "0.0.1-nonexistent", CacheDir: cache})
	if err == nil {
		t.Fatal("Fetch of a nonexistent version succeeded")
	}
	if !strings.Contains(err.Error(), "0.0.1-nonexistent") || !strings.Contains(err.Error(), "mvn failed") {
		t.Fatalf("error lacks the version or Maven's output: %v", err)
	}
	t.Logf("error (as expected): %v", err)
	if left, _ := filepath.Glob(filepath.Join(cache, "*")); len(left) != 0 {
		t.Fatalf("failed fetch left %v in the cache", left)
	}
}

// A broker taken down with SIGTERM or SIGKILL comes back on the same
// address with its data: the records produced before each restart are
// still there, and Stop afterwards leaves no process and no directory.
func TestRestartKeepsAddressAndData(t *testing.T) {
	b := startBroker(t)
	const topic = "realkafka-restart"
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V2_8_0_0
	cfg.Producer.Return.Successes = true
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	createTopic(t, b.Addr(), cfg, topic)
	addr := b.Addr()

	if err := b.Restart(context.Background()); err == nil {
		t.Fatal("Restart of a running broker succeeded")
	}
	down := []struct {
		name string
		stop func() error
	}{
		{"SIGTERM", func() error { return b.Terminate(time.Minute) }},
		{"SIGKILL", b.Kill},
	}
	var offsets []int64
	for i, d := range down {
		offsets = append(offsets, produce(t, addr, cfg, topic, "k", fmt.Sprint("before ", d.name)))
		pid := b.PID()
		begin := time.Now()
		if err := d.stop(); err != nil {
			t.Fatalf("%s: %v", d.name, err)
		}
		select {
		case <-b.Done():
		default:
			t.Fatalf("%s: Done not closed after it returned", d.name)
		}
		if err := syscall.Kill(-pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Fatalf("%s: process group %d still exists (kill 0: %v)", d.name, pid, err)
		}
		stopped := time.Since(begin)
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		err := b.Restart(ctx)
		cancel()
		if err != nil {
			t.Fatalf("restart after %s: %v", d.name, err)
		}
		if b.Addr() != addr || b.PID() == pid {
			t.Fatalf("restart after %s: address %s (was %s), pid %d (was %d)", d.name, b.Addr(), addr, b.PID(), pid)
		}
		t.Logf("%s: stopped in %s, ready again in %s", d.name, stopped.Round(time.Millisecond), (time.Since(begin) - stopped).Round(time.Millisecond))
		for j := 0; j <= i; j++ {
			if got, want := consumeOne(t, addr, cfg, topic, offsets[j]), fmt.Sprint("before ", down[j].name); got != want {
				t.Fatalf("after the restart following %s, offset %d holds %q, want %q", d.name, offsets[j], got, want)
			}
		}
	}
	pid, dir := b.PID(), b.Dir()
	if err := b.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if err := syscall.Kill(-pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("process group %d still exists after Stop (kill 0: %v)", pid, err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("temp dir %s still exists after Stop (stat: %v)", dir, err)
	}
	if err := b.Restart(context.Background()); err == nil {
		t.Fatal("Restart after Stop succeeded")
	}
}
