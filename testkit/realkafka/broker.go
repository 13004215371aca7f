package realkafka

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/millrace/millrace/internal/childproc"
)

// ErrNoJava is wrapped by the error of Start when java is not on PATH.
var ErrNoJava = errors.New("realkafka: java not found on PATH")

const (
	// readyMarker is logged by the broker once it serves clients.
	readyMarker = "Kafka Server started"
	// stopGrace is how long Stop waits after SIGTERM before SIGKILL.
	stopGrace = 5 * time.Second
	// toolHeapMB is the heap of storage formatting and RunTool JVMs.
	toolHeapMB = 256
)

// JVM flags, measured on 2 cores with Kafka 4.1.1. Serial GC avoids a
// pool of GC threads for a small heap. C1-only compilation
// (TieredStopAtLevel=1) makes short-lived tool JVMs ~20% faster; for the
// broker it saves only ~0.3 s of ~2.4 s and would cost steady-state
// throughput, so the broker keeps the full JIT.
var (
	brokerJVMFlags = []string{"-XX:+UseSerialGC", "-Djava.awt.headless=true"}
	// ServerJVMFlags are the flags Kafka's bin/kafka-run-class.sh gives a
	// broker (KAFKA_JVM_PERFORMANCE_OPTS, Kafka 4.1), for Options.JVMFlags.
	// A young collection of the serial collector stopped the broker for
	// 8-15 ms on this 2-core machine; G1 aims at 20 ms at most and does
	// most of its work beside the application.
	ServerJVMFlags = []string{"-server", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20",
		"-XX:InitiatingHeapOccupancyPercent=35", "-XX:+ExplicitGCInvokesConcurrent", "-Djava.awt.headless=true"}
	toolJVMFlags = []string{"-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-Djava.awt.headless=true"}
)

// Broker is a running single-node Kafka broker. Stop it when done.
//
// A test can take it down as an operator or a crash would ([Broker.Terminate],
// [Broker.Kill]) and start it again on the same ports and data
// ([Broker.Restart]). Those three must not be called concurrently with each
// other; Stop may be called at any time, from any goroutine.
type Broker struct {
	java, version, libs, dir, addr string
	opts                           Options
	port, controller               int

	// With Options.SASLSSL: the PLAINTEXT listener between brokers, the
	// user (defaults filled in) and the CA that signed the certificate.
	internalAddr string
	secure       *SecureOptions
	caFile       string

	log     *lineLog
	startup time.Duration

	mu      sync.Mutex
	cmd     *exec.Cmd     // the current (or last) JVM
	done    chan struct{} // closed when that JVM has exited
	stopped bool          // Stop was called: no more launches

	stopOnce sync.Once
	stopErr  error
}

// Start fetches the jars if needed, formats fresh storage in a new temp
// directory, starts the broker on 127.0.0.1 and waits until it is ready.
// ctx bounds the startup only; the broker runs until Stop.
func Start(ctx context.Context, opts Options) (*Broker, error) {
	opts = opts.withDefaults()
	var secure *SecureOptions
	if opts.SASLSSL != nil {
		so, err := opts.SASLSSL.withDefaults()
		if err != nil {
			return nil, err
		}
		secure = &so
	}
	java, err := exec.LookPath("java")
	if err != nil {
		return nil, fmt.Errorf("starting kafka: %w", ErrNoJava)
	}
	libs, version, err := Fetch(ctx, opts)
	if err != nil {
		return nil, err
	}
	dir, err := childproc.OwnedTempDir("millrace-kafka-")
	if err != nil {
		return nil, err
	}
	b := &Broker{
		java: java, version: version, libs: libs, dir: dir, opts: opts, secure: secure,
		log: newLineLog(opts.Log, readyMarker),
	}
	if err := b.start(ctx, opts); err != nil {
		b.Stop()
		return nil, err
	}
	return b, nil
}

// Addr is the broker's bootstrap address for clients, "127.0.0.1:<port>":
// its PLAINTEXT listener, or with Options.SASLSSL its SASL_SSL listener.
func (b *Broker) Addr() string { return b.addr }

// InternalAddr is the broker's PLAINTEXT listener: Addr, or with
// Options.SASLSSL the listener between brokers, which Kafka's CLI tools
// ([Broker.RunTool]) can use without credentials. Clients that bootstrap
// from it learn only its address.
func (b *Broker) InternalAddr() string {
	if b.internalAddr != "" {
		return b.internalAddr
	}
	return b.addr
}

// SASLSSL is the user of the SASL_SSL listener, with the defaults filled
// in (the password Start chose), or nil when the broker is PLAINTEXT.
func (b *Broker) SASLSSL() *SecureOptions {
	if b.secure == nil {
		return nil
	}
	so := *b.secure
	return &so
}

// CAFile is the PEM certificate of the CA that signed the SASL_SSL
// listener's certificate (for 127.0.0.1 and localhost): what clients must
// trust. It is in [Broker.Dir], so Stop removes it. Empty when the broker
// is PLAINTEXT.
func (b *Broker) CAFile() string { return b.caFile }

// Version is the Kafka version the broker runs.
func (b *Broker) Version() string { return b.version }

// StartupTime is the time from the first java exec (storage formatting) to
// the broker being ready; it excludes the download.
func (b *Broker) StartupTime() time.Duration { return b.startup }

// LibsDir is the directory of the broker's jars.
func (b *Broker) LibsDir() string { return b.libs }

// Dir is the broker's temp directory (config and data), removed by Stop.
func (b *Broker) Dir() string { return b.dir }

// PID is the process id of the broker's current (or last) JVM, which leads
// its own process group.
func (b *Broker) PID() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.cmd.Process.Pid
}

// Done is closed when the broker's current JVM has exited, whether by Stop,
// Terminate, Kill or not. After Restart it is a new channel.
func (b *Broker) Done() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.done
}

// start runs the steps of Start after the download.
func (b *Broker) start(ctx context.Context, opts Options) error {
	n := 2
	if b.secure != nil {
		n = 3
	}
	ports, err := pickPorts(opts.Port, n)
	if err != nil {
		return err
	}
	b.addr = fmt.Sprintf("127.0.0.1:%d", ports[0])
	b.port, b.controller = ports[0], ports[1]
	cfg := brokerConfig{version: b.version, dir: b.dir, port: b.port, controller: b.controller}
	if b.secure != nil {
		caFile, keystore, err := writeCerts(b.dir)
		if err != nil {
			return err
		}
		b.caFile = caFile
		cfg.internal = ports[2]
		b.internalAddr = fmt.Sprintf("127.0.0.1:%d", cfg.internal)
		cfg.secure = &secureListener{mechanism: b.secure.Mechanism, keystore: keystore}
	}
	if err := cfg.writeFiles(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, opts.StartTimeout)
	defer cancel()
	begin := time.Now()
	if err := b.format(ctx); err != nil {
		return err
	}
	b.log.progress(fmt.Sprintf("storage formatted in %s; starting kafka %s on %s",
		time.Since(begin).Round(time.Millisecond), b.version, b.addr))
	ready, done, err := b.launch(opts.HeapMB)
	if err != nil {
		return err
	}
	if err := b.waitReady(ctx, ready, done, opts.StartTimeout); err != nil {
		return err
	}
	b.startup = time.Since(begin)
	b.log.progress(fmt.Sprintf("kafka %s ready on %s in %s", b.version, b.addr, b.startup.Round(time.Millisecond)))
	return nil
}

// javaArgs builds the java arguments running mainClass on the Kafka
// classpath. tools selects the quieter logging config.
func (b *Broker) javaArgs(heapMB int, tools bool, mainClass string, args ...string) []string {
	prefix, flags := "", b.opts.JVMFlags
	if tools {
		prefix, flags = "tools-", toolJVMFlags
	}
	argv := []string{fmt.Sprintf("-Xmx%dm", heapMB)}
	argv = append(argv, flags...)
	argv = append(argv,
		"-Dlog4j2.configurationFile="+filepath.Join(b.dir, prefix+"log4j2.properties"),
		"-Dlog4j.configuration=file:"+filepath.Join(b.dir, prefix+"log4j.properties"),
		"-Dkafka.logs.dir="+filepath.Join(b.dir, "logs"),
		"-cp", filepath.Join(b.libs, "*"),
		mainClass)
	return append(argv, args...)
}

// runJava runs a short-lived JVM to completion and returns its output.
func (b *Broker) runJava(ctx context.Context, mainClass string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, b.java, b.javaArgs(toolHeapMB, true, mainClass, args...)...)
	cmd.Cancel = func() error { return childproc.SignalGroup(cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = stopGrace
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := childproc.Start(cmd); err != nil {
		return nil, err
	}
	err := cmd.Wait()
	return out.Bytes(), err
}

// format runs StorageTool on the fresh config with a random cluster id,
// creating the SCRAM user of a SASL_SSL broker (KIP-900) in the same step.
func (b *Broker) format(ctx context.Context) error {
	id, err := newClusterID()
	if err != nil {
		return err
	}
	args := []string{"format", "-t", id, "-c", filepath.Join(b.dir, "server.properties"), "--ignore-formatted"}
	if b.secure != nil {
		args = append(args, "--add-scram", b.secure.scramArg())
	}
	out, err := b.runJava(ctx, "kafka.tools.StorageTool", args...)
	b.log.Write(out)
	if err != nil {
		return fmt.Errorf("realkafka: formatting kafka %s storage failed: %w\n%s", b.version, err, tail(string(out), 40))
	}
	return nil
}

// launch starts the broker JVM and a goroutine that reaps it. It returns
// a channel closed when this JVM logs that it is ready, and one closed when
// it exits.
func (b *Broker) launch(heapMB int) (ready, done <-chan struct{}, err error) {
	cmd := exec.Command(b.java, b.javaArgs(heapMB, false, "kafka.Kafka", filepath.Join(b.dir, "server.properties"))...)
	cmd.Dir = b.dir
	cmd.WaitDelay = stopGrace
	cmd.Stdout, cmd.Stderr = b.log, b.log
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.stopped {
		return nil, nil, errors.New("realkafka: the broker was stopped")
	}
	ready = b.log.watch()
	if err := childproc.Start(cmd); err != nil {
		return nil, nil, fmt.Errorf("realkafka: starting java: %w", err)
	}
	exited := make(chan struct{})
	b.cmd, b.done = cmd, exited
	go func() {
		cmd.Wait()
		close(exited)
	}()
	return ready, exited, nil
}

// waitReady waits for the ready log line of the JVM launch started and then
// for the port to accept connections. ctx carries the start timeout.
func (b *Broker) waitReady(ctx context.Context, ready, done <-chan struct{}, timeout time.Duration) error {
	select {
	case <-ready:
	case <-done:
		b.mu.Lock()
		state := b.cmd.ProcessState
		b.mu.Unlock()
		return fmt.Errorf("realkafka: kafka %s exited during startup (%v); last output:\n%s",
			b.version, state, b.log.Tail())
	case <-ctx.Done():
		return fmt.Errorf("realkafka: kafka %s not ready after %s: %w; last output:\n%s",
			b.version, timeout, ctx.Err(), b.log.Tail())
	}
	return waitPort(ctx, b.addr)
}

// waitPort dials addr until it accepts a connection or ctx ends.
func waitPort(ctx context.Context, addr string) error {
	var d net.Dialer
	for {
		c, err := d.DialContext(ctx, "tcp", addr)
		if err == nil {
			return c.Close()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("realkafka: %s not accepting connections: %w", addr, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// RunTool runs a Kafka CLI main class, such as
// "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand", on the
// broker's classpath and returns its combined stdout and stderr. Tool logging
// goes to stdout at WARN level. Pass "--bootstrap-server", b.InternalAddr()
// as needed (b.Addr() needs credentials when the broker is SASL_SSL).
func (b *Broker) RunTool(ctx context.Context, mainClass string, args ...string) ([]byte, error) {
	out, err := b.runJava(ctx, mainClass, args...)
	if err != nil {
		return out, fmt.Errorf("realkafka: %s failed: %w\n%s", mainClass, err, tail(string(out), 40))
	}
	return out, nil
}

// Stop terminates the broker (SIGTERM to its process group, SIGKILL after a
// few seconds), waits for the JVM to exit and removes the broker's temp
// directory. It is idempotent and safe to call concurrently.
func (b *Broker) Stop() error {
	b.stopOnce.Do(func() { b.stopErr = b.stop() })
	return b.stopErr
}

// stop does the work of Stop once.
func (b *Broker) stop() error {
	var errs []error
	b.mu.Lock()
	b.stopped = true
	cmd, done := b.cmd, b.done
	b.mu.Unlock()
	if cmd != nil {
		errs = append(errs, terminate(cmd, done, b.log))
	}
	if err := os.RemoveAll(b.dir); err != nil {
		errs = append(errs, fmt.Errorf("realkafka: removing %s: %w", b.dir, err))
	}
	return errors.Join(errs...)
}

// terminate signals the JVM's process group and waits for the JVM to exit:
// SIGTERM, then SIGKILL after stopGrace.
func terminate(cmd *exec.Cmd, done <-chan struct{}, log *lineLog) error {
	if exited, err := signalRunning(cmd, done, syscall.SIGTERM); exited || err != nil {
		return err
	}
	select {
	case <-done:
		return nil
	case <-time.After(stopGrace):
	}
	log.progress("broker ignored SIGTERM; sending SIGKILL")
	if exited, err := signalRunning(cmd, done, syscall.SIGKILL); exited || err != nil {
		return err
	}
	<-done
	return nil
}

// signalRunning signals the process group of cmd unless the JVM has exited
// (then its process group id may have been reused): exited says so.
func signalRunning(cmd *exec.Cmd, done <-chan struct{}, sig syscall.Signal) (exited bool, err error) {
	select {
	case <-done:
		return true, nil
	default:
	}
	return false, childproc.SignalGroup(cmd.Process.Pid, sig)
}

// current returns the current JVM and its exit channel.
func (b *Broker) current() (*exec.Cmd, <-chan struct{}) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.cmd, b.done
}

// Terminate stops the broker's JVM the way an operator would: SIGTERM to
// its process group, then it waits up to timeout for a clean shutdown. A
// JVM still running then is killed (SIGKILL) and Terminate says so in its
// error. The data stays for [Broker.Restart]. It is a no-op on a JVM that
// has exited.
func (b *Broker) Terminate(timeout time.Duration) error {
	cmd, done := b.current()
	if exited, err := signalRunning(cmd, done, syscall.SIGTERM); exited || err != nil {
		return err
	}
	select {
	case <-done:
		return nil
	case <-time.After(timeout):
	}
	b.log.progress(fmt.Sprintf("broker still running %s after SIGTERM; sending SIGKILL", timeout))
	if _, err := signalRunning(cmd, done, syscall.SIGKILL); err != nil {
		return err
	}
	<-done
	return fmt.Errorf("realkafka: kafka %s did not exit within %s of SIGTERM; killed it", b.version, timeout)
}

// Kill crashes the broker: SIGKILL to its JVM's process group, then it
// waits until the JVM has exited. The data stays for [Broker.Restart]. It
// is a no-op on a JVM that has exited.
func (b *Broker) Kill() error {
	cmd, done := b.current()
	if exited, err := signalRunning(cmd, done, syscall.SIGKILL); exited || err != nil {
		return err
	}
	<-done
	return nil
}

// Restart starts the broker again after its JVM exited (Terminate, Kill,
// or a crash of its own), with the same config, ports and data, and waits
// until it is ready, as Start does: ctx and Options.StartTimeout bound the
// wait. The broker's log continues in the same writer. It fails while the
// JVM is still running, and after Stop.
func (b *Broker) Restart(ctx context.Context) error {
	_, done := b.current()
	select {
	case <-done:
	default:
		return errors.New("realkafka: restart of a running broker: Terminate or Kill it first")
	}
	ctx, cancel := context.WithTimeout(ctx, b.opts.StartTimeout)
	defer cancel()
	begin := time.Now()
	b.log.progress(fmt.Sprintf("restarting kafka %s on %s", b.version, b.addr))
	ready, done, err := b.launch(b.opts.HeapMB)
	if err != nil {
		return err
	}
	if err := b.waitReady(ctx, ready, done, b.opts.StartTimeout); err != nil {
		return err
	}
	b.log.progress(fmt.Sprintf("kafka %s ready again on %s in %s", b.version, b.addr, time.Since(begin).Round(time.Millisecond)))
	return nil
}
