package testkit_test

import (
	"crypto/x509"
	"errors"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/millrace/millrace/testkit"
)

// On each secure backend testkit's helpers get in with the backend's
// Security, and a client with a wrong password, an untrusted CA or no
// security at all is turned away within seconds.
func TestSecure_backends_let_their_user_in_and_no_one_else(t *testing.T) {
	testkit.ForEachSecureBackend(t, func(t *testing.T, b testkit.Backend) {
		if b.Security.Protocol() != "SASL_SSL" {
			t.Fatalf("Security.Protocol() = %s, want SASL_SSL", b.Security.Protocol())
		}
		topic := "secure-" + testkit.Unique()
		b.CreateTopic(t, topic, 2)
		b.Produce(t, topic, []testkit.Record{{Key: []byte("k"), Value: []byte("secret")}})
		if got := b.ReadAll(t, topic); len(got) != 1 || string(got[0].Value) != "secret" {
			t.Fatalf("read %v, want the one record produced", got)
		}

		t.Run("wrong password", func(t *testing.T) {
			err := connectFails(t, b.WithPassword("wrong"))
			if !errors.Is(err, sarama.ErrSASLAuthenticationFailed) {
				t.Fatalf("error %v: want sarama.ErrSASLAuthenticationFailed", err)
			}
		})
		t.Run("untrusted CA", func(t *testing.T) {
			err := connectFails(t, b.WithCAFile(testkit.ThrowawayCA(t)))
			var unknown x509.UnknownAuthorityError
			if !errors.As(err, &unknown) {
				t.Fatalf("error %v: want an x509.UnknownAuthorityError", err)
			}
		})
		t.Run("PLAINTEXT", func(t *testing.T) {
			connectFails(t, b.WithSecurity(nil))
		})
	})
}

// connectFails opens one client for b without retrying (sarama's metadata
// retries only), which must fail within 30 s, and returns the error.
func connectFails(t *testing.T, b testkit.Backend) error {
	t.Helper()
	cfg := b.SaramaConfig(t)
	cfg.Net.DialTimeout = 5 * time.Second
	cfg.Net.ReadTimeout = 10 * time.Second
	begin := time.Now()
	c, err := sarama.NewClient(b.Brokers, cfg)
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

// The three-stage pipeline of the e2e test delivers each record once, in
// key order, on brokers that want TLS and SCRAM: every client of the
// engine reaches them with the plan's Security.
func TestSecure_three_stages_deliver_each_record_once_in_key_order(t *testing.T) {
	testkit.ForEachSecureBackend(t, func(t *testing.T, b testkit.Backend) {
		threeStagesDeliverOnceInKeyOrder(t, b, 2000, 20)
	})
}

func TestSecure_WithPassword_and_WithCAFile_leave_the_backend_as_it_was(t *testing.T) {
	b := testkit.SecureEmbedded(t)
	password, ca := b.Security.SASL.Password, b.Security.TLS.CAFile
	wrong := b.WithPassword("wrong").WithCAFile("other.pem")
	if b.Security.SASL.Password != password || b.Security.TLS.CAFile != ca {
		t.Fatalf("the backend changed: %+v", b.Security)
	}
	if wrong.Security.SASL.Password != "wrong" || wrong.Security.TLS.CAFile != "other.pem" {
		t.Fatalf("the copy did not change: %+v", wrong.Security)
	}
}
