package broker_test

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/millrace/millrace/broker"
	"github.com/millrace/millrace/testkit/testca"
	"github.com/millrace/millrace/transport"
)

// startSecure starts an embedded broker with TLS and one SCRAM-SHA-512
// user, and returns it with the client settings that get in.
func startSecure(t *testing.T) (*broker.Broker, *transport.Security) {
	t.Helper()
	dir := t.TempDir()
	ca, err := testca.New(dir, "ca")
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.Issue(dir, "server", "127.0.0.1", "localhost")
	if err != nil {
		t.Fatal(err)
	}
	b, err := broker.Start(broker.Config{
		Users: []broker.User{{Mechanism: transport.SASLSCRAMSHA512, Username: "alice", Password: "alice-secret"}},
		TLS:   &tls.Config{Certificates: []tls.Certificate{cert.TLS}, MinVersion: tls.VersionTLS12},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b, &transport.Security{
		TLS:  &transport.TLS{CAFile: ca.CertFile},
		SASL: &transport.SASL{Mechanism: transport.SASLSCRAMSHA512, Username: "alice", Password: "alice-secret"},
	}
}

// connect opens a sarama client with s and bounded timeouts and one
// metadata retry, so that a client that cannot get in fails in seconds.
func connect(t *testing.T, addr string, s *transport.Security) (sarama.Client, error) {
	t.Helper()
	cfg := transport.NewSaramaConfig("broker-test")
	cfg.Net.DialTimeout = 5 * time.Second
	cfg.Net.ReadTimeout = 10 * time.Second
	cfg.Net.WriteTimeout = 5 * time.Second
	cfg.Metadata.Retry.Max = 1
	cfg.Metadata.Retry.Backoff = 100 * time.Millisecond
	if err := s.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	begin := time.Now()
	c, err := sarama.NewClient([]string{addr}, cfg)
	if d := time.Since(begin); d > 30*time.Second {
		t.Fatalf("connecting took %s, want < 30s", d)
	}
	if err == nil {
		t.Cleanup(func() { c.Close() })
	}
	return c, err
}

func TestSecure_embedded_broker_with_SCRAM_over_TLS(t *testing.T) {
	b, sec := startSecure(t)

	t.Run("the user gets in", func(t *testing.T) {
		c, err := connect(t, b.Addr(), sec)
		if err != nil {
			t.Fatal(err)
		}
		admin, err := sarama.NewClusterAdminFromClient(c)
		if err != nil {
			t.Fatal(err)
		}
		if err := admin.CreateTopic("secure", &sarama.TopicDetail{NumPartitions: 1, ReplicationFactor: 1}, false); err != nil {
			t.Fatalf("CreateTopic: %v", err)
		}
		p, err := sarama.NewSyncProducerFromClient(c)
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		_, offset, err := p.SendMessage(&sarama.ProducerMessage{Topic: "secure", Value: sarama.StringEncoder("secret")})
		if err != nil {
			t.Fatalf("SendMessage: %v", err)
		}
		consumer, err := sarama.NewConsumerFromClient(c)
		if err != nil {
			t.Fatal(err)
		}
		defer consumer.Close()
		pc, err := consumer.ConsumePartition("secure", 0, offset)
		if err != nil {
			t.Fatal(err)
		}
		defer pc.Close()
		select {
		case m := <-pc.Messages():
			if string(m.Value) != "secret" {
				t.Fatalf("consumed %q, want %q", m.Value, "secret")
			}
		case err := <-pc.Errors():
			t.Fatalf("consume: %v", err)
		case <-time.After(30 * time.Second):
			t.Fatal("no record consumed within 30s")
		}
	})

	t.Run("a wrong password is refused", func(t *testing.T) {
		wrong := *sec
		wrong.SASL = &transport.SASL{Mechanism: sec.SASL.Mechanism, Username: sec.SASL.Username, Password: "wrong"}
		_, err := connect(t, b.Addr(), &wrong)
		if !errors.Is(err, sarama.ErrSASLAuthenticationFailed) {
			t.Fatalf("error %v: want sarama.ErrSASLAuthenticationFailed", err)
		}
		t.Logf("error (as expected): %v", err)
	})

	t.Run("an unknown user is refused", func(t *testing.T) {
		wrong := *sec
		wrong.SASL = &transport.SASL{Mechanism: sec.SASL.Mechanism, Username: "mallory", Password: "alice-secret"}
		_, err := connect(t, b.Addr(), &wrong)
		if !errors.Is(err, sarama.ErrSASLAuthenticationFailed) {
			t.Fatalf("error %v: want sarama.ErrSASLAuthenticationFailed", err)
		}
		t.Logf("error (as expected): %v", err)
	})

	t.Run("a CA that did not sign the certificate is refused", func(t *testing.T) {
		other, err := testca.New(t.TempDir(), "other")
		if err != nil {
			t.Fatal(err)
		}
		wrong := *sec
		wrong.TLS = &transport.TLS{CAFile: other.CertFile}
		_, err = connect(t, b.Addr(), &wrong)
		var unknown x509.UnknownAuthorityError
		if !errors.As(err, &unknown) {
			t.Fatalf("error %v: want an x509.UnknownAuthorityError", err)
		}
		t.Logf("error (as expected): %v", err)
	})

	t.Run("a PLAINTEXT client is refused", func(t *testing.T) {
		_, err := connect(t, b.Addr(), nil)
		if err == nil {
			t.Fatal("the client connected")
		}
		t.Logf("error (as expected): %v", err)
	})

	t.Run("a TLS client without SASL is refused", func(t *testing.T) {
		_, err := connect(t, b.Addr(), &transport.Security{TLS: sec.TLS})
		if err == nil {
			t.Fatal("the client connected")
		}
		t.Logf("error (as expected): %v", err)
	})
}

func TestSecure_embedded_broker_rejects_an_unknown_mechanism(t *testing.T) {
	_, err := broker.Start(broker.Config{Users: []broker.User{{Mechanism: "GSSAPI", Username: "u", Password: "p"}}})
	if err == nil {
		t.Fatal("Start succeeded")
	}
	t.Logf("error (as expected): %v", err)
}
