package realkafka_test

import (
	"context"
	"crypto/x509"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/millrace/millrace/testkit/realkafka"
	"github.com/millrace/millrace/testkit/testca"
	"github.com/millrace/millrace/transport"
)

// startSecureBroker starts a broker whose clients' listener is SASL_SSL
// with SCRAM-SHA-512, and stops it at the end of the test.
func startSecureBroker(t *testing.T) *realkafka.Broker {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	opts := realkafka.Options{Version: os.Getenv("REALKAFKA_VERSION"), SASLSSL: &realkafka.SecureOptions{}}
	if os.Getenv("REALKAFKA_LOG") == "1" {
		opts.Log = os.Stderr
	}
	b, err := realkafka.Start(ctx, opts)
	if err != nil {
		skipIfMissing(t, err)
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Stop() })
	t.Logf("kafka %s SASL_SSL on %s (internal PLAINTEXT %s), started in %s",
		b.Version(), b.Addr(), b.InternalAddr(), b.StartupTime().Round(time.Millisecond))
	return b
}

// securityOf is how a client reaches b: its CA and its SCRAM user.
func securityOf(b *realkafka.Broker) *transport.Security {
	u := b.SASLSSL()
	return &transport.Security{
		TLS:  &transport.TLS{CAFile: b.CAFile()},
		SASL: &transport.SASL{Mechanism: u.Mechanism, Username: u.Username, Password: u.Password},
	}
}

// secureConfig is a client config for s with bounded timeouts and few
// retries, so that a client that cannot get in fails in seconds.
func secureConfig(t *testing.T, s *transport.Security) *sarama.Config {
	t.Helper()
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V2_8_0_0
	cfg.Producer.Return.Successes = true
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Net.DialTimeout = 5 * time.Second
	cfg.Net.ReadTimeout = 10 * time.Second
	cfg.Net.WriteTimeout = 5 * time.Second
	cfg.Metadata.Retry.Max = 1
	cfg.Metadata.Retry.Backoff = 100 * time.Millisecond
	if err := s.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// connectFails opens a client with cfg, which must fail within 30 s, and
// returns the error.
func connectFails(t *testing.T, addr string, cfg *sarama.Config) error {
	t.Helper()
	begin := time.Now()
	c, err := sarama.NewClient([]string{addr}, cfg)
	if err == nil {
		c.Close()
		t.Fatal("the client connected")
	}
	if d := time.Since(begin); d > 30*time.Second {
		t.Fatalf("the client took %s to fail, want < 30s", d)
	}
	t.Logf("error after %s (as expected): %v", time.Since(begin).Round(time.Millisecond), err)
	return err
}

// One broker serves every case: a client with the CA and the user gets
// in, creates, lists, produces and consumes; a wrong password, a CA that
// did not sign the broker's certificate and a PLAINTEXT client are turned
// away within seconds; Kafka's tools get in on the internal PLAINTEXT
// listener; and after a crash and restart the user still gets in.
func TestSecure_SASL_SSL_broker(t *testing.T) {
	b := startSecureBroker(t)
	if u := b.SASLSSL(); u.Mechanism != realkafka.SCRAMSHA512 || u.Username != realkafka.DefaultUsername || u.Password == "" {
		t.Fatalf("SASLSSL() = %+v, want the defaults filled in", u)
	}
	if b.InternalAddr() == b.Addr() {
		t.Fatalf("InternalAddr() = Addr() = %s, want a listener of its own", b.Addr())
	}

	t.Run("the user gets in", func(t *testing.T) {
		const topic = "secure-test"
		cfg := secureConfig(t, securityOf(b))
		createTopic(t, b.Addr(), cfg, topic)
		admin, err := sarama.NewClusterAdmin([]string{b.Addr()}, cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer admin.Close()
		topics, err := admin.ListTopics()
		if err != nil {
			t.Fatalf("ListTopics: %v", err)
		}
		if _, ok := topics[topic]; !ok {
			t.Fatalf("ListTopics = %v, want %s in it", topics, topic)
		}
		brokers, _, err := admin.DescribeCluster()
		if err != nil {
			t.Fatalf("DescribeCluster: %v", err)
		}
		if len(brokers) != 1 || brokers[0].Addr() != b.Addr() {
			t.Fatalf("the cluster advertises %v to SASL_SSL clients, want only %s", brokers, b.Addr())
		}
		offset := produce(t, b.Addr(), cfg, topic, "k", "secret")
		if got := consumeOne(t, b.Addr(), cfg, topic, offset); got != "secret" {
			t.Fatalf("consumed %q, want %q", got, "secret")
		}
		checkOffsetTool(t, b, topic)
	})

	t.Run("a wrong password is refused", func(t *testing.T) {
		s := securityOf(b)
		s.SASL.Password = "wrong"
		err := connectFails(t, b.Addr(), secureConfig(t, s))
		if !errors.Is(err, sarama.ErrSASLAuthenticationFailed) {
			t.Fatalf("error %v: want sarama.ErrSASLAuthenticationFailed", err)
		}
	})

	t.Run("a CA that did not sign the certificate is refused", func(t *testing.T) {
		other, err := testca.New(t.TempDir(), "other")
		if err != nil {
			t.Fatal(err)
		}
		s := securityOf(b)
		s.TLS.CAFile = other.CertFile
		err = connectFails(t, b.Addr(), secureConfig(t, s))
		var unknown x509.UnknownAuthorityError
		if !errors.As(err, &unknown) {
			t.Fatalf("error %v: want an x509.UnknownAuthorityError", err)
		}
	})

	t.Run("a PLAINTEXT client is refused", func(t *testing.T) {
		connectFails(t, b.Addr(), secureConfig(t, nil))
	})

	t.Run("the user and the certificate survive a restart", func(t *testing.T) {
		if err := b.Kill(); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		if err := b.Restart(ctx); err != nil {
			t.Fatal(err)
		}
		cfg := secureConfig(t, securityOf(b))
		createTopic(t, b.Addr(), cfg, "secure-after-restart")
		produce(t, b.Addr(), cfg, "secure-after-restart", "k", "again")
	})

}
