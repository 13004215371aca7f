package pipeline

import (
	"github.com/IBM/sarama"

	"net"

	"github.com/millrace/millrace/transport"
)

// validateSecurity checks the broker block's tls and sasl: a known mechanism with
// a username and password, TLS files that can be read and hold what they
// should. PLAIN without TLS to a broker other hosts could be, and
// insecure_skip_verify, are warnings.
func (b *Broker) validateSecurity(p *problems) {
	if t := b.TLS; t != nil && t.enabled() {
		sec := transport.TLS{CAFile: t.CAFile}
		if t.CAFile != "" {
			if _, err := sec.Config(); err != nil {
				p.add(t.Of("ca_file"), "%s", scrubbed(err.Error(), p.sourcesAt(t.Of("ca_file"))))
			}
		}
		switch {
		case (t.CertFile == "") != (t.KeyFile == ""):
			missing, given := "key_file", "cert_file"
			if t.CertFile == "" {
				missing, given = "cert_file", "key_file"
			}
			p.add(t.Of(given), "tls %s needs %s too (a client certificate and its key)", given, missing)
		case t.CertFile != "":
			pair := transport.TLS{CertFile: t.CertFile, KeyFile: t.KeyFile}
			if _, err := pair.Config(); err != nil {
				p.add(t.Of("cert_file"), "%s", scrubbed(err.Error(), append(p.sourcesAt(t.Of("cert_file")), p.sourcesAt(t.Of("key_file"))...)))
			}
		}
		if t.InsecureSkipVerify {
			p.warn(t.Of("insecure_skip_verify"), "insecure_skip_verify: the brokers' certificates are not checked, "+
				"so anybody between millrace and the brokers can read and change the traffic; for tests only")
		}
	}
	s := b.SASL
	if s == nil {
		return
	}
	switch s.Mechanism {
	case transport.SASLPlain, transport.SASLSCRAMSHA256, transport.SASLSCRAMSHA512:
	case "":
		p.add(s.Self, "broker sasl: missing key \"mechanism\": want %s, %s or %s",
			transport.SASLPlain, transport.SASLSCRAMSHA256, transport.SASLSCRAMSHA512)
	default:
		at := s.Of("mechanism")
		p.add(at, "sasl mechanism %s: want %s, %s or %s (as Kafka's sasl.mechanism spells them)", p.quoted(at, s.Mechanism),
			transport.SASLPlain, transport.SASLSCRAMSHA256, transport.SASLSCRAMSHA512)
	}
	if s.Username == "" {
		p.add(s.Of("username"), "broker sasl: the username is empty")
	}
	if s.Password == "" {
		p.add(s.Of("password"), "broker sasl: the password is empty (set it from the environment: password: ${KAFKA_PASSWORD})")
	}
	if s.Mechanism == transport.SASLPlain && (b.TLS == nil || !b.TLS.enabled()) {
		for i, addr := range b.Brokers {
			if host, _, err := net.SplitHostPort(addr); err == nil && !loopback(host) {
				p.warn(s.Of("mechanism"), "sasl mechanism PLAIN sends the password as it is, and without tls it goes "+
					"unencrypted to broker %d (%s): add `tls: {}` (or use SCRAM-SHA-512)", i+1, p.shown(b.Item("brokers", i), addr))
				break
			}
		}
	}
}

// enabled reports whether the tls block turns TLS on: unless it says
// enabled: false.
func (t *BrokerTLS) enabled() bool { return t.Enabled == nil || *t.Enabled }

// security is the transport.Security of the broker block; nil when it
// has neither a tls nor a sasl block (with `tls: {enabled: false}` its TLS
// settings are kept, Off, for the environment or a flag to turn on).
func (b *Broker) security() *transport.Security {
	if b == nil {
		return nil
	}
	var sec transport.Security
	if t := b.TLS; t != nil {
		sec.TLS = &transport.TLS{CAFile: t.CAFile, CertFile: t.CertFile, KeyFile: t.KeyFile,
			ServerName: t.ServerName, InsecureSkipVerify: t.InsecureSkipVerify, Off: !t.enabled()}
	}
	if s := b.SASL; s != nil {
		sasl := s.settings()
		sec.SASL = &sasl
	}
	if sec.Protocol() == "PLAINTEXT" && !b.Set("tls") {
		return nil
	}
	return &sec
}

// SaramaConfig is [transport.NewSaramaConfig] of the plan's client id with
// its Security applied: the config of every consuming and admin client
// made for a plan. The error is Security's: a TLS file that cannot be read
// (since the file was loaded) or holds no certificate.
func (pl *Plan) SaramaConfig() (*sarama.Config, error) {
	c := transport.NewSaramaConfig(pl.ClientID)
	if err := pl.Security.Apply(c); err != nil {
		return nil, err
	}
	return c, nil
}

// ProducerConfig is [transport.NewProducerConfig] of the plan's client id
// with its compression and Security applied: the config of every producer
// made for a plan. Errors as [Plan.SaramaConfig]'s.
func (pl *Plan) ProducerConfig() (*sarama.Config, error) {
	c := transport.NewProducerConfig(pl.ClientID)
	if err := transport.SetCompression(c, pl.Compression); err != nil {
		return nil, err
	}
	if err := pl.Security.Apply(c); err != nil {
		return nil, err
	}
	return c, nil
}
