// Package broker is millrace's embedded Kafka-protocol broker: one node on
// loopback (the fork of franz-go's kfake in internal/kfake, with the
// patches its README lists) that every Kafka client can talk to. It is what
// `millrace run` starts when no brokers are configured, and what tests run
// against. Only the command line and testkit import it.
package broker

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/millrace/millrace/internal/kfake"
)

// DefaultPort is where the embedded broker listens by default, on
// 127.0.0.1.
const DefaultPort = 9092

// DefaultDir is where the embedded broker keeps its data by default.
const DefaultDir = ".millrace/broker"

// ErrPortInUse is returned (wrapped) by [Start] when the port is taken.
var ErrPortInUse = errors.New("port already in use")

// ErrDataDirInUse is returned (wrapped) by [Start] when another embedded
// broker uses the data directory.
var ErrDataDirInUse = errors.New("data directory in use by another embedded broker")

// Config configures the embedded broker.
type Config struct {
	// Port on 127.0.0.1; 0 picks a free one.
	Port int
	// DataDir holds the topics and committed offsets, so they survive a
	// restart. Empty keeps everything in memory.
	DataDir string
	Logger  *slog.Logger
	// Users, if any, are the SASL users clients must authenticate as
	// (SASL_PLAINTEXT, or SASL_SSL with TLS); none lets every client in.
	Users []User
	// TLS, if set, makes the listener TLS (SSL, or SASL_SSL with Users),
	// serving its certificates.
	TLS *tls.Config
}

// User is a SASL user of the embedded broker. Every user may do anything
// (the broker checks no ACLs).
type User struct {
	// Mechanism is "PLAIN", "SCRAM-SHA-256" or "SCRAM-SHA-512"; a user
	// who should log in with several has one User for each.
	Mechanism string
	Username  string
	Password  string
}

// Broker is an in-process Kafka-protocol broker (franz-go's kfake): one
// node on loopback that every Kafka client can talk to.
type Broker struct {
	cluster *kfake.Cluster
	lock    *os.File
}

// Start starts the embedded broker. An error wraps [ErrPortInUse] when
// the port is taken and [ErrDataDirInUse] when the data directory is.
func Start(cfg Config) (*Broker, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	e := &Broker{}
	opts := []kfake.Opt{
		kfake.NumBrokers(1),
		kfake.Ports(cfg.Port),
		kfake.ClusterID("millrace-embedded"),
		kfake.WithLogger(kfakeLogger{cfg.Logger}),
		// Kafka's default group.max.session.timeout.ms (kfake's is 5m), the
		// top of the session_timeout range pipelines.yaml accepts.
		kfake.GroupMaxSessionTimeout(30 * time.Minute),
	}
	if len(cfg.Users) > 0 {
		opts = append(opts, kfake.EnableSASL())
	}
	for _, u := range cfg.Users {
		switch u.Mechanism {
		case "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512":
		default:
			return nil, fmt.Errorf("embedded broker: user %q: SASL mechanism %q: want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", u.Username, u.Mechanism)
		}
		opts = append(opts, kfake.Superuser(u.Mechanism, u.Username, u.Password))
	}
	if cfg.TLS != nil {
		opts = append(opts, kfake.TLS(cfg.TLS))
	}
	if cfg.DataDir != "" {
		lock, err := lockDir(cfg.DataDir)
		if err != nil {
			return nil, err
		}
		e.lock = lock
		opts = append(opts, kfake.DataDir(cfg.DataDir))
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		e.unlock()
		if errors.Is(err, syscall.EADDRINUSE) {
			return nil, fmt.Errorf("embedded broker: 127.0.0.1:%d: %w", cfg.Port, ErrPortInUse)
		}
		return nil, fmt.Errorf("embedded broker: %w", err)
	}
	e.cluster = c
	return e, nil
}

// lockDir takes an exclusive lock on dir so that two brokers never share it.
func lockDir(dir string) (*os.File, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("embedded broker: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("embedded broker: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("embedded broker: %s: %w", dir, ErrDataDirInUse)
	}
	return f, nil
}

func (e *Broker) unlock() {
	if e.lock != nil {
		e.lock.Close()
		e.lock = nil
	}
}

// Addr is the broker's host:port.
func (e *Broker) Addr() string { return e.cluster.ListenAddrs()[0] }

// Compact runs log compaction now on the topics with cleanup.policy=compact
// (the broker compacts on its own only every log.cleaner.backoff.ms, an
// hour by default): for tests of compacted topics.
func (e *Broker) Compact() { e.cluster.Compact() }

// Close stops the broker, writing its data to disk first.
func (e *Broker) Close() {
	e.cluster.Close()
	e.unlock()
}

type kfakeLogger struct{ log *slog.Logger }

func (l kfakeLogger) Logf(level kfake.LogLevel, msg string, args ...any) {
	if level == kfake.LogLevelError {
		l.log.Error("embedded broker: " + fmt.Sprintf(msg, args...))
	}
}
