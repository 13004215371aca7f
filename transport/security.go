package transport

import (
	"crypto/sha256"
	"crypto/sha512"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"log/slog"
	"os"

	"github.com/IBM/sarama"
	"github.com/xdg-go/scram"
)

// SASL mechanisms millrace speaks (Kafka's sasl.mechanism values).
const (
	SASLPlain       = "PLAIN"         // RFC 4616; sends the password, so only over TLS
	SASLSCRAMSHA256 = "SCRAM-SHA-256" // RFC 5802/7677, KIP-84
	SASLSCRAMSHA512 = "SCRAM-SHA-512" // RFC 5802, KIP-84
)

// Security is how clients reach a cluster that encrypts or authenticates
// its connections: Kafka's security.protocol SSL (TLS only), SASL_PLAINTEXT
// (SASL only) or SASL_SSL (both). A nil or zero Security is PLAINTEXT.
//
// Formatted with fmt (any verb), it never shows the password.
type Security struct {
	TLS  *TLS
	SASL *SASL
}

// TLS configures encryption of the connections to the brokers (Kafka's
// ssl.* client settings).
type TLS struct {
	// CAFile is a PEM file of the certificate authorities to trust
	// (ssl.truststore); empty trusts the system's roots.
	CAFile string
	// CertFile and KeyFile are a PEM client certificate and its key, for
	// brokers that authenticate clients by certificate (ssl.client.auth);
	// both or neither.
	CertFile, KeyFile string
	// ServerName is the name the brokers' certificates must carry; empty
	// checks each broker's host name as dialled.
	ServerName string
	// InsecureSkipVerify accepts any certificate: encryption without
	// authentication of the broker, for tests only.
	InsecureSkipVerify bool
	// Off keeps the settings but does not use TLS (pipelines.yaml's
	// `enabled: false`, which the environment or a flag may turn on).
	Off bool
}

// on reports whether t asks for TLS.
func (t *TLS) on() bool { return t != nil && !t.Off }

// SASL configures authentication (Kafka's sasl.mechanism and
// sasl.jaas.config).
type SASL struct {
	// Mechanism is SASLPlain, SASLSCRAMSHA256 or SASLSCRAMSHA512.
	Mechanism string
	Username  string
	Password  string
}

// MarshalJSON writes s with its password redacted.
func (s SASL) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct{ Mechanism, Username, Password string }{s.Mechanism, s.Username, redact(s.Password)})
}

// LogValue is s for log/slog, with its password redacted.
func (s SASL) LogValue() slog.Value {
	return slog.GroupValue(slog.String("mechanism", s.Mechanism), slog.String("username", s.Username),
		slog.String("password", redact(s.Password)))
}

// Format writes s with its password redacted, whatever the verb.
func (s SASL) Format(f fmt.State, _ rune) {
	fmt.Fprintf(f, "{Mechanism:%s Username:%s Password:%s}", s.Mechanism, s.Username, redact(s.Password))
}

// Format writes s with its password redacted, whatever the verb.
func (s Security) Format(f fmt.State, _ rune) {
	fmt.Fprintf(f, "{TLS:%+v SASL:", s.TLS)
	if s.SASL == nil {
		fmt.Fprint(f, "<nil>}")
		return
	}
	fmt.Fprintf(f, "%v}", *s.SASL)
}

func redact(secret string) string {
	if secret == "" {
		return ""
	}
	return "[redacted]"
}

// Protocol is Kafka's security.protocol name for s: PLAINTEXT, SSL,
// SASL_PLAINTEXT or SASL_SSL.
func (s *Security) Protocol() string {
	switch {
	case s == nil || (!s.TLS.on() && s.SASL == nil):
		return "PLAINTEXT"
	case s.SASL == nil:
		return "SSL"
	case !s.TLS.on():
		return "SASL_PLAINTEXT"
	}
	return "SASL_SSL"
}

// ErrSecurity marks an error that retrying cannot mend: the brokers
// refused the credentials, or their certificate did not verify.
// [Connect] returns such an error at once rather than retry it.
var ErrSecurity = errors.New("kafka security")

// Apply sets c's TLS and SASL settings from s (nil: none). It reads the
// TLS files each time; an error names the file and what is wrong with it,
// or the unknown mechanism.
func (s *Security) Apply(c *sarama.Config) error {
	if s == nil {
		return nil
	}
	if s.TLS.on() {
		tc, err := s.TLS.Config()
		if err != nil {
			return err
		}
		c.Net.TLS.Enable = true
		c.Net.TLS.Config = tc
	}
	if s.SASL != nil {
		c.Net.SASL.Enable = true
		c.Net.SASL.Handshake = true
		c.Net.SASL.User = s.SASL.Username
		c.Net.SASL.Password = s.SASL.Password
		switch s.SASL.Mechanism {
		case SASLPlain:
			c.Net.SASL.Mechanism = sarama.SASLTypePlaintext
		case SASLSCRAMSHA256:
			c.Net.SASL.Mechanism = sarama.SASLTypeSCRAMSHA256
			c.Net.SASL.SCRAMClientGeneratorFunc = scramClient(sha256.New)
		case SASLSCRAMSHA512:
			c.Net.SASL.Mechanism = sarama.SASLTypeSCRAMSHA512
			c.Net.SASL.SCRAMClientGeneratorFunc = scramClient(sha512.New)
		default:
			return fmt.Errorf("sasl mechanism %q: want %s, %s or %s", s.SASL.Mechanism, SASLPlain, SASLSCRAMSHA256, SASLSCRAMSHA512)
		}
	}
	return nil
}

// Config returns the crypto/tls client config t describes. Errors name
// the file that cannot be read or holds no usable certificate or key.
func (t *TLS) Config() (*tls.Config, error) {
	c := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.ServerName, InsecureSkipVerify: t.InsecureSkipVerify} //nolint:gosec // an explicit, documented choice of the user
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("tls ca_file: %w", err)
		}
		c.RootCAs = x509.NewCertPool()
		if !c.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls ca_file %s: no PEM certificate in it", t.CAFile)
		}
	}
	switch {
	case t.CertFile != "" && t.KeyFile != "":
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("tls cert_file %s, key_file %s: %w", t.CertFile, t.KeyFile, err)
		}
		c.Certificates = []tls.Certificate{cert}
	case t.CertFile != "" || t.KeyFile != "":
		return nil, errors.New("tls: cert_file and key_file go together; give both or neither")
	}
	return c, nil
}

// scramClient adapts xdg-go/scram (the SCRAM client sarama's own example
// uses) to sarama's SCRAMClient.
func scramClient(h func() hash.Hash) func() sarama.SCRAMClient {
	return func() sarama.SCRAMClient { return &scramConversation{hash: h} }
}

type scramConversation struct {
	hash func() hash.Hash
	conv *scram.ClientConversation
}

func (s *scramConversation) Begin(user, password, authzID string) error {
	client, err := scram.HashGeneratorFcn(s.hash).NewClient(user, password, authzID)
	if err != nil {
		return err
	}
	s.conv = client.NewConversation()
	return nil
}

func (s *scramConversation) Step(challenge string) (string, error) { return s.conv.Step(challenge) }

func (s *scramConversation) Done() bool { return s.conv.Done() }

// securityError is err, an error of connecting with cfg, as an error that
// wraps [ErrSecurity] and says what failed when retrying cannot mend it:
// the brokers refused the SASL credentials or mechanism, or their TLS
// certificate did not verify. Otherwise nil.
func securityError(err error, cfg *sarama.Config) error {
	var (
		verify    *tls.CertificateVerificationError
		authority x509.UnknownAuthorityError
		hostname  x509.HostnameError
		invalid   x509.CertificateInvalidError
		record    tls.RecordHeaderError
	)
	switch {
	case errors.Is(err, sarama.ErrSASLAuthenticationFailed) || errors.Is(err, sarama.ErrIllegalSASLState):
		return fmt.Errorf("%w: SASL %s authentication as user %q failed (wrong username or password?): %w",
			ErrSecurity, cfg.Net.SASL.Mechanism, cfg.Net.SASL.User, err)
	case errors.Is(err, sarama.ErrUnsupportedSASLMechanism):
		return fmt.Errorf("%w: the brokers do not accept SASL mechanism %s: %w", ErrSecurity, cfg.Net.SASL.Mechanism, err)
	case errors.As(err, &verify) || errors.As(err, &authority) || errors.As(err, &hostname) || errors.As(err, &invalid):
		return fmt.Errorf("%w: TLS: the broker's certificate did not verify (tls ca_file, server_name): %w", ErrSecurity, err)
	case errors.As(err, &record):
		return fmt.Errorf("%w: TLS: the broker did not answer in TLS (a PLAINTEXT or SASL_PLAINTEXT listener?): %w", ErrSecurity, err)
	}
	return nil
}
