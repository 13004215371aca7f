package pipeline

import (
	"fmt"
	"net"
	"slices"

	"github.com/IBM/sarama"

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
// its fetch Tuning and Security applied: the config of every consuming and admin client
// made for a plan. The error is Security's: a TLS file that cannot be read
// (since the file was loaded) or holds no certificate.
func (pl *Plan) SaramaConfig() (*sarama.Config, error) {
	c := transport.NewSaramaConfig(pl.ClientID)
	pl.Tuning.ApplyConsumer(c)
	if err := pl.Security.Apply(c); err != nil {
		return nil, err
	}
	return c, nil
}

// ProducerConfig is [transport.NewProducerConfig] of the plan's client id
// with its linger, compression and Security applied: the config of every producer
// made for a plan. Errors as [Plan.SaramaConfig]'s.
func (pl *Plan) ProducerConfig() (*sarama.Config, error) {
	c := transport.NewProducerConfig(pl.ClientID)
	pl.Tuning.ApplyProducer(c)
	if err := transport.SetCompression(c, pl.Compression); err != nil {
		return nil, err
	}
	if err := pl.Security.Apply(c); err != nil {
		return nil, err
	}
	return c, nil
}

// secrets finds the file's secrets (broker.sasl.password, admin.token,
// api tokens, callback secrets): the environment variables each is read
// from, into f.SecretEnv and p.secretEnv, and those written as they are,
// into f.LiteralSecrets, with a warning for each.
func (f *File) secrets(p *problems) {
	type secret struct {
		what string
		at   Pos
	}
	var all []secret
	if f.Broker != nil && f.Broker.SASL != nil && f.Broker.SASL.Password != "" {
		all = append(all, secret{"broker.sasl.password", f.Broker.SASL.Of("password")})
	}
	if f.Admin != nil && f.Admin.Token != "" {
		all = append(all, secret{"admin.token", f.Admin.Of("token")})
	}
	if f.API != nil {
		for _, t := range f.API.Tokens {
			if t != nil && t.Token != "" {
				all = append(all, secret{"an api token", t.Of("token")})
			}
		}
	}
	for i := range f.Pipelines {
		if r := f.Pipelines[i].Results; r != nil && r.Callback != nil && r.Callback.Secret != "" {
			all = append(all, secret{"a results callback secret", r.Callback.Of("secret")})
		}
	}
	var names []string
	for _, s := range all {
		src, ok := p.sources[s.at]
		if !ok || !src.refs {
			f.LiteralSecrets = append(f.LiteralSecrets, fmt.Sprintf("%s (line %d)", s.what, s.at.Line))
			p.warn(s.at, "%s is written in the file: anyone who reads the file (or its ConfigMap) reads it; "+
				"read it from the environment, like ${KAFKA_PASSWORD}", s.what)
			continue
		}
		for _, v := range src.vars {
			names = append(names, v.name)
		}
	}
	slices.Sort(names)
	f.SecretEnv = slices.Compact(names)
	p.secretEnv = f.SecretEnv
}
