package jobs_test

import (
	"strings"
	"testing"

	"github.com/millrace/millrace/jobs"
)

// The example of GitHub's "Validating webhook deliveries" page.
const (
	githubSecret    = "It's a Secret to Everybody"
	githubBody      = "Hello, World!"
	githubSignature = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
)

func TestSign_matches_githubs_example(t *testing.T) {
	if got := jobs.Sign([]byte(githubSecret), []byte(githubBody)); got != githubSignature {
		t.Fatalf("Sign = %s, want %s", got, githubSignature)
	}
}

func TestVerifySignature(t *testing.T) {
	secret, body := []byte(githubSecret), []byte(githubBody)
	for _, tc := range []struct {
		name         string
		secret, body []byte
		header       string
		want         bool
	}{
		{"its own signature", secret, body, githubSignature, true},
		{"uppercase hex digits", secret, body, "sha256=" + strings.ToUpper(strings.TrimPrefix(githubSignature, "sha256=")), true},
		{"another body", secret, []byte("Hello, World?"), githubSignature, false},
		{"another secret", []byte("guess"), body, githubSignature, false},
		{"no prefix", secret, body, strings.TrimPrefix(githubSignature, "sha256="), false},
		{"sha1 prefix", secret, body, "sha1=" + strings.TrimPrefix(githubSignature, "sha256="), false},
		{"truncated digest", secret, body, githubSignature[:len(githubSignature)-2], false},
		{"not hex", secret, body, githubSignature[:len(githubSignature)-1] + "g", false},
		{"empty", secret, body, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := jobs.VerifySignature(tc.secret, tc.body, tc.header); got != tc.want {
				t.Fatalf("VerifySignature = %v, want %v", got, tc.want)
			}
		})
	}
}
