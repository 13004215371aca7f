package realkafka

import (
	"io"
	"os"
	"path/filepath"
	"time"
)

// DefaultVersion is the Kafka version used when Options.Version is empty.
const DefaultVersion = "4.1.1"

// fallbackVersions are tried in order when Options.Version is empty and the
// previous one cannot be fetched.
var fallbackVersions = []string{DefaultVersion, "4.0.0", "3.9.1"}

// Options configures Fetch and Start. The zero value is ready to use.
type Options struct {
	// Version is the Kafka version, e.g. "4.1.1". Empty means DefaultVersion,
	// falling back to 4.0.0 and then 3.9.1 if it cannot be fetched.
	Version string
	// CacheDir holds the downloaded jars, in <CacheDir>/kafka-<version>/libs.
	// Empty means $XDG_CACHE_HOME/millrace, or ~/.cache/millrace.
	CacheDir string
	// HeapMB is the broker's maximum Java heap in MiB. Zero means 512.
	HeapMB int
	// JVMFlags are the broker JVM's flags besides the heap. Nil means the
	// serial collector, which starts fastest for tests; ServerJVMFlags are
	// those kafka-server-start.sh runs a broker with (G1 with a 20 ms
	// pause goal), for measuring latency as a deployed broker has it.
	JVMFlags []string
	// Port is the clients' listener port on 127.0.0.1 (PLAINTEXT, or
	// SASL_SSL with SASLSSL). Zero picks a free port.
	Port int
	// SASLSSL, if set, makes the clients' listener SASL_SSL: Start makes a
	// CA and a certificate for 127.0.0.1 and localhost ([Broker.CAFile])
	// and creates one SCRAM user ([Broker.SASLSSL]). Brokers and the
	// controller keep PLAINTEXT listeners of their own on loopback
	// ([Broker.InternalAddr]). Needs Kafka 3.5 or later (creating users
	// with StorageTool, KIP-900).
	SASLSSL *SecureOptions
	// Log receives the broker's stdout and stderr and progress lines. Nil
	// discards them; the last lines are still kept for error messages.
	Log io.Writer
	// StartTimeout bounds how long Start waits for the broker to become ready,
	// not counting the download. Zero means 90s.
	StartTimeout time.Duration
}

// withDefaults returns a copy of o with empty fields filled in.
func (o Options) withDefaults() Options {
	if o.CacheDir == "" {
		o.CacheDir = defaultCacheDir()
	}
	if o.HeapMB <= 0 {
		o.HeapMB = 512
	}
	if o.JVMFlags == nil {
		o.JVMFlags = brokerJVMFlags
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	if o.StartTimeout <= 0 {
		o.StartTimeout = 90 * time.Second
	}
	return o
}

// candidateVersions lists the versions to try, in order.
func (o Options) candidateVersions() []string {
	if o.Version != "" {
		return []string{o.Version}
	}
	return fallbackVersions
}

// defaultCacheDir is $XDG_CACHE_HOME/millrace or ~/.cache/millrace.
func defaultCacheDir() string {
	if d := os.Getenv("XDG_CACHE_HOME"); d != "" {
		return filepath.Join(d, "millrace")
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".cache", "millrace")
	}
	return filepath.Join(os.TempDir(), "millrace-cache")
}
