package transport_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/millrace/millrace/testkit"
	"github.com/millrace/millrace/transport"
)

// connect connects to b with sec (as Apply sets it up) and a 20 s
// timeout, returning the error and how long it took.
func connect(t *testing.T, b testkit.Backend, sec *transport.Security) (error, time.Duration) {
	t.Helper()
	cfg := transport.NewSaramaConfig("security-test")
	if err := sec.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	c, err := transport.ConnectTimeout(context.Background(), b.Brokers, cfg, 20*time.Second)
	if c != nil {
		_ = c.Close()
	}
	return err, time.Since(start)
}

// Refused credentials and a certificate that does not verify fail at
// once, with ErrSecurity and an error naming the cause; the right ones
// connect.
func TestConnect_fails_at_once_on_refused_credentials_or_an_unverified_certificate(t *testing.T) {
	testkit.ForEachSecureBackend(t, func(t *testing.T, b testkit.Backend) {
		if err, _ := connect(t, b, b.Security); err != nil {
			t.Fatalf("the backend's own credentials: %v", err)
		}
		wrong := b.WithPassword("not-the-password")
		err, took := connect(t, wrong, wrong.Security)
		t.Logf("wrong password: %v after %s", err, took.Round(time.Millisecond))
		if !errors.Is(err, transport.ErrSecurity) || took > 10*time.Second ||
			!strings.Contains(err.Error(), `SASL SCRAM-SHA-512 authentication as user "millrace" failed`) {
			t.Errorf("wrong password: %v after %s; want ErrSecurity at once, naming the mechanism and user", err, took)
		}
		if strings.Contains(err.Error(), "not-the-password") {
			t.Errorf("the error shows the password: %v", err)
		}
		untrusted := b.WithCAFile(testkit.ThrowawayCA(t))
		err, took = connect(t, untrusted, untrusted.Security)
		t.Logf("untrusted CA: %v after %s", err, took.Round(time.Millisecond))
		if !errors.Is(err, transport.ErrSecurity) || took > 10*time.Second ||
			!strings.Contains(err.Error(), "x509: certificate signed by unknown authority") {
			t.Errorf("untrusted CA: %v after %s; want ErrSecurity at once with the verification error", err, took)
		}
	})
}

// A TLS client to a PLAINTEXT listener gets an error within the connect
// timeout, though the embedded broker takes the TLS hello for the start
// of a request and waits for the rest (sarama alone would wait its read
// timeout times its retries: minutes).
func TestConnect_tls_to_a_plaintext_listener_fails_within_the_timeout(t *testing.T) {
	b := testkit.Embedded(t)
	cfg := transport.NewSaramaConfig("security-test")
	if err := (&transport.Security{TLS: &transport.TLS{}}).Apply(cfg); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	c, err := transport.ConnectTimeout(context.Background(), b.Brokers, cfg, 3*time.Second)
	took := time.Since(start)
	t.Logf("TLS to PLAINTEXT: %v after %s", err, took.Round(time.Millisecond))
	if c != nil {
		_ = c.Close()
	}
	if err == nil || took > 6*time.Second || !strings.Contains(err.Error(), "cannot reach Kafka at "+b.Brokers[0]) ||
		!strings.Contains(err.Error(), "does its listener speak SSL?") {
		t.Errorf("TLS to PLAINTEXT: %v after %s; want an error naming the broker and the protocol tried within about the 3 s timeout", err, took)
	}
}

func TestSecurity_Apply_and_Format(t *testing.T) {
	const pw = "canary-3b1f9e"
	sec := &transport.Security{SASL: &transport.SASL{Mechanism: "SCRAM-SHA-256", Username: "u", Password: pw}}
	cfg := transport.NewSaramaConfig("")
	if err := sec.Apply(cfg); err != nil || !cfg.Net.SASL.Enable || cfg.Net.TLS.Enable || string(cfg.Net.SASL.Mechanism) != "SCRAM-SHA-256" {
		t.Errorf("Apply: %v; SASL %v %s, TLS %v: want SCRAM-SHA-256 without TLS", err, cfg.Net.SASL.Enable, cfg.Net.SASL.Mechanism, cfg.Net.TLS.Enable)
	}
	if sec.Protocol() != "SASL_PLAINTEXT" {
		t.Errorf("protocol %s", sec.Protocol())
	}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
		for _, v := range []any{sec, *sec, *sec.SASL, sec.SASL} {
			if got := fmt.Sprintf(verb, v); strings.Contains(got, pw) {
				t.Errorf("%s of %T shows the password: %s", verb, v, got)
			}
		}
	}
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("x", "security", sec, "sasl", sec.SASL, "value", *sec.SASL)
	slog.New(slog.NewTextHandler(&logged, nil)).Info("x", "security", sec, "sasl", sec.SASL, "value", *sec.SASL)
	for _, v := range []any{sec, *sec, sec.SASL, *sec.SASL} {
		j, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		logged.Write(j)
	}
	if strings.Contains(logged.String(), pw) || !strings.Contains(logged.String(), "[redacted]") {
		t.Errorf("JSON and slog show the password, or nothing redacted: %s", logged.String())
	}
	bad := &transport.Security{SASL: &transport.SASL{Mechanism: "GSSAPI"}}
	if err := bad.Apply(transport.NewSaramaConfig("")); err == nil || !strings.Contains(err.Error(), `sasl mechanism "GSSAPI"`) {
		t.Errorf("GSSAPI: %v", err)
	}
	missing := &transport.Security{TLS: &transport.TLS{CAFile: "/no/such/ca.pem"}}
	if err := missing.Apply(transport.NewSaramaConfig("")); err == nil || !strings.Contains(err.Error(), "/no/such/ca.pem") {
		t.Errorf("missing CA file: %v", err)
	}
	var nilSec *transport.Security
	if err := nilSec.Apply(transport.NewSaramaConfig("")); err != nil || nilSec.Protocol() != "PLAINTEXT" {
		t.Errorf("nil security: %v, %s", err, nilSec.Protocol())
	}
}
