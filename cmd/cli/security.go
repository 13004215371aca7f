package cli

import (
	"cmp"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/millrace/millrace/transport"
)

// Environment variables that set how every command reaches the brokers,
// over the broker block of the pipelines file (README: Security). The
// password has no flag: a command line is visible to every user of the
// machine (ps, /proc/<pid>/cmdline).
const (
	envTLS                = "MILLRACE_TLS"
	envTLSCAFile          = "MILLRACE_TLS_CA_FILE"
	envTLSCertFile        = "MILLRACE_TLS_CERT_FILE"
	envTLSKeyFile         = "MILLRACE_TLS_KEY_FILE"
	envTLSServerName      = "MILLRACE_TLS_SERVER_NAME"
	envTLSInsecure        = "MILLRACE_TLS_INSECURE_SKIP_VERIFY"
	envSASLMechanism      = "MILLRACE_SASL_MECHANISM"
	envSASLUsername       = "MILLRACE_SASL_USERNAME"
	envSASLPassword       = "MILLRACE_SASL_PASSWORD" //nolint:gosec // a variable's name, not a secret
	securityFlagsHelpNote = "(default: $%s, then the file's broker.%s)"
)

// securityFlags are the flags of the commands that talk to a running
// cluster for its TLS and SASL settings.
type securityFlags struct {
	tls                     optionalBool
	caFile                  string
	saslMechanism, saslUser string
}

func (s *securityFlags) add(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.Var(&s.tls, "tls", "connect to the brokers over TLS; --tls=false turns it off "+fmt.Sprintf(securityFlagsHelpNote, envTLS, "tls"))
	fl.Lookup("tls").NoOptDefVal = "true"
	fl.StringVar(&s.caFile, "tls-ca-file", "", "PEM file of the certificate authorities to trust over TLS; implies --tls "+
		fmt.Sprintf(securityFlagsHelpNote, envTLSCAFile, "tls.ca_file"))
	fl.StringVar(&s.saslMechanism, "sasl-mechanism", "", "authenticate with SASL: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512, "+
		"the password from $"+envSASLPassword+" "+fmt.Sprintf(securityFlagsHelpNote, envSASLMechanism, "sasl.mechanism"))
	fl.StringVar(&s.saslUser, "sasl-username", "", "the SASL username "+fmt.Sprintf(securityFlagsHelpNote, envSASLUsername, "sasl.username"))
}

// optionalBool is a boolean flag that knows whether it was given.
type optionalBool struct{ value, set bool }

func (b *optionalBool) Set(s string) error {
	v, err := strconv.ParseBool(s)
	if err != nil {
		return err
	}
	b.value, b.set = v, true
	return nil
}
func (b *optionalBool) String() string   { return strconv.FormatBool(b.value) }
func (b *optionalBool) Type() string     { return "bool" }
func (b *optionalBool) IsBoolFlag() bool { return true }

// security is how a command reaches the brokers: the file's settings
// (file, nil if none), overridden by the environment, overridden by flags
// (nil: a command without security flags), setting by setting. nil means
// PLAINTEXT.
//
// Whether TLS is on is decided by the highest of the three that says:
// flags (--tls or --tls=false; else --tls-ca-file turns it on), then the
// environment ($MILLRACE_TLS; else a TLS setting in it turns it on), then
// the file (its tls block, unless enabled: false). The file's TLS settings
// count whichever turned TLS on. An unknown mechanism, or SASL without a
// username or password, is bad usage.
func security(file *transport.Security, flags *securityFlags) (*transport.Security, error) {
	var sec transport.Security
	tlsOn := false
	if file != nil {
		if file.TLS != nil {
			t := *file.TLS
			sec.TLS, tlsOn = &t, !t.Off
		}
		if file.SASL != nil {
			s := *file.SASL
			sec.SASL = &s
		}
	}
	if sec.TLS == nil {
		sec.TLS = &transport.TLS{}
	}

	// The environment.
	envOn, envSet, err := envBool(envTLS)
	if err != nil {
		return nil, err
	}
	envImplied := false
	for name, field := range map[string]*string{envTLSCAFile: &sec.TLS.CAFile, envTLSCertFile: &sec.TLS.CertFile,
		envTLSKeyFile: &sec.TLS.KeyFile, envTLSServerName: &sec.TLS.ServerName} {
		if v := os.Getenv(name); v != "" {
			*field, envImplied = v, true
		}
	}
	insecure, insecureSet, err := envBool(envTLSInsecure)
	if err != nil {
		return nil, err
	}
	if insecureSet {
		sec.TLS.InsecureSkipVerify = insecure
		envImplied = envImplied || insecure
	}
	switch {
	case envSet:
		tlsOn = envOn
	case envImplied:
		tlsOn = true
	}

	// The flags.
	if flags != nil {
		if flags.caFile != "" {
			sec.TLS.CAFile = flags.caFile
		}
		switch {
		case flags.tls.set:
			tlsOn = flags.tls.value
		case flags.caFile != "":
			tlsOn = true
		}
	}
	if tlsOn {
		sec.TLS.Off = false
	} else {
		sec.TLS = nil
	}

	mech, user, pass := os.Getenv(envSASLMechanism), os.Getenv(envSASLUsername), os.Getenv(envSASLPassword)
	if flags != nil {
		mech, user = cmp.Or(flags.saslMechanism, mech), cmp.Or(flags.saslUser, user)
	}
	if mech != "" || user != "" || pass != "" {
		if sec.SASL == nil {
			sec.SASL = &transport.SASL{}
		}
		sec.SASL.Mechanism, sec.SASL.Username, sec.SASL.Password =
			cmp.Or(mech, sec.SASL.Mechanism), cmp.Or(user, sec.SASL.Username), cmp.Or(pass, sec.SASL.Password)
	}
	if s := sec.SASL; s != nil {
		switch s.Mechanism {
		case transport.SASLPlain, transport.SASLSCRAMSHA256, transport.SASLSCRAMSHA512:
		case "":
			return nil, usagef("SASL needs a mechanism: --sasl-mechanism or $%s (PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)", envSASLMechanism)
		default:
			return nil, usagef("SASL mechanism %q: want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", s.Mechanism)
		}
		if s.Username == "" {
			return nil, usagef("SASL %s needs a username: --sasl-username or $%s", s.Mechanism, envSASLUsername)
		}
		if s.Password == "" {
			return nil, usagef("SASL %s needs a password: $%s (or the file's broker.sasl.password)", s.Mechanism, envSASLPassword)
		}
	}
	if sec.TLS == nil && sec.SASL == nil {
		return nil, nil
	}
	if sec.TLS != nil {
		if _, err := sec.TLS.Config(); err != nil {
			return nil, usagef("%v (from the file's broker.tls, $MILLRACE_TLS_* or --tls-ca-file)", err)
		}
	}
	return &sec, nil
}

// warnInsecure logs what is unsafe in how a command reaches brokers, as
// the file's validation warns of it in the file: a PLAIN password without
// TLS to a broker other hosts could be, and certificates not checked. The
// flags and the environment can make either.
func warnInsecure(log *slog.Logger, sec *transport.Security, brokers []string) {
	if sec == nil {
		return
	}
	if sec.TLS != nil && sec.TLS.InsecureSkipVerify {
		log.Warn("TLS without checking the brokers' certificates (insecure_skip_verify): anybody between millrace and the brokers can read and change the traffic")
	}
	if sec.SASL != nil && sec.SASL.Mechanism == transport.SASLPlain && sec.TLS == nil {
		for _, b := range brokers {
			if host, _, err := net.SplitHostPort(b); err == nil && !isLoopback(host) {
				log.Warn("SASL PLAIN without TLS sends the password unencrypted", "broker", b)
				return
			}
		}
	}
}

// isLoopback reports whether host is a loopback IP or "localhost".
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// envBool reads a boolean variable: its value, and whether it is set.
func envBool(name string) (value, set bool, err error) {
	v := os.Getenv(name)
	if v == "" {
		return false, false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, false, usagef("$%s=%q: want true or false", name, v)
	}
	return b, true, nil
}
