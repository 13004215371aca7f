package cli

import (
	"cmp"
	"fmt"
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
	tls                     bool
	caFile                  string
	saslMechanism, saslUser string
}

func (s *securityFlags) add(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.BoolVar(&s.tls, "tls", false, "connect to the brokers over TLS "+fmt.Sprintf(securityFlagsHelpNote, envTLS, "tls"))
	fl.StringVar(&s.caFile, "tls-ca-file", "", "PEM file of the certificate authorities to trust over TLS; implies --tls "+
		fmt.Sprintf(securityFlagsHelpNote, envTLSCAFile, "tls.ca_file"))
	fl.StringVar(&s.saslMechanism, "sasl-mechanism", "", "authenticate with SASL: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512, "+
		"the password from $"+envSASLPassword+" "+fmt.Sprintf(securityFlagsHelpNote, envSASLMechanism, "sasl.mechanism"))
	fl.StringVar(&s.saslUser, "sasl-username", "", "the SASL username "+fmt.Sprintf(securityFlagsHelpNote, envSASLUsername, "sasl.username"))
}

// security is how a command reaches the brokers: the file's settings
// (file, nil if none), overridden by the environment, overridden by flags
// (nil: a command without security flags). nil means PLAINTEXT. An
// unknown mechanism, or SASL without a username or password, is bad usage.
func security(file *transport.Security, flags *securityFlags) (*transport.Security, error) {
	var sec transport.Security
	if file != nil {
		sec = *file
		if sec.TLS != nil {
			t := *sec.TLS
			sec.TLS = &t
		}
		if sec.SASL != nil {
			s := *sec.SASL
			sec.SASL = &s
		}
	}
	tlsOn, tlsSet, err := envBool(envTLS)
	if err != nil {
		return nil, err
	}
	if flags != nil && flags.tls {
		tlsOn, tlsSet = true, true
	}
	tlsEnv := map[string]*string{}
	if sec.TLS == nil {
		sec.TLS = &transport.TLS{}
	}
	tlsEnv[envTLSCAFile], tlsEnv[envTLSCertFile], tlsEnv[envTLSKeyFile], tlsEnv[envTLSServerName] =
		&sec.TLS.CAFile, &sec.TLS.CertFile, &sec.TLS.KeyFile, &sec.TLS.ServerName
	implied := false
	for name, field := range tlsEnv {
		if v := os.Getenv(name); v != "" {
			*field, implied = v, true
		}
	}
	if flags != nil && flags.caFile != "" {
		sec.TLS.CAFile, implied = flags.caFile, true
	}
	insecure, insecureSet, err := envBool(envTLSInsecure)
	if err != nil {
		return nil, err
	}
	if insecureSet {
		sec.TLS.InsecureSkipVerify, implied = insecure, true
	}
	switch {
	case tlsSet && !tlsOn:
		sec.TLS = nil
	case tlsSet || implied || (file != nil && file.TLS != nil):
	default:
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
	return &sec, nil
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
