package pipeline_test

import (
	"testing"

	"github.com/millrace/millrace/pipeline"
)

func TestCallbackHostAllowed_matches_exact_names_and_subdomains_of_wildcards(t *testing.T) {
	allowed := []string{"hooks.example.com", "*.example.org", "Mixed.Example.NET.", "10.0.0.7", "::1"}
	tests := []struct {
		host string
		want bool
	}{
		{"hooks.example.com", true},
		{"HOOKS.Example.Com", true},
		{"hooks.example.com.", true},
		{"mixed.example.net", true},
		{"a.example.org", true},
		{"a.b.EXAMPLE.org", true},
		{"10.0.0.7", true},
		{"::1", true},
		{"example.org", false}, // a wildcard is for subdomains only
		{"badexample.org", false},
		{"example.org.evil.net", false},
		{"x.hooks.example.com", false}, // an exact entry is exact
		{"example.com", false},
		{"hooks.example.com:443", false}, // a host, not host:port
		{"10.0.0.70", false},
		{"", false},
		{".", false},
	}
	for _, tt := range tests {
		if got := pipeline.CallbackHostAllowed(tt.host, allowed); got != tt.want {
			t.Errorf("CallbackHostAllowed(%q) = %v, want %v", tt.host, got, tt.want)
		}
	}
	if pipeline.CallbackHostAllowed("hooks.example.com", nil) {
		t.Error("an empty list allows a host")
	}
	if pipeline.CallbackHostAllowed("a.b", []string{"*."}) {
		t.Error(`"*." allows a host`)
	}
}
