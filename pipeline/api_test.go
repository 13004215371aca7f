package pipeline_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/millrace/millrace/pipeline"
)

func TestParse_api_block_with_defaults_and_tokens_never_shown(t *testing.T) {
	const token = "canary-token-7f3a"
	env := func(k string) (string, bool) { return token, k == "T" }
	src := `version: 1
api:
  addr: 0.0.0.0:8080
  produce_timeout: 3s
  tokens:
    - {token: "${T}", pipelines: [p]}
pipelines:
  - name: p
    input: p.in
    stages: [{name: a, filter: log}]
`
	f, err := pipeline.Parse("x.yaml", []byte(src), env)
	if err != nil {
		t.Fatal(err)
	}
	pl := f.Plan()
	a := pl.API
	if a.Addr != "0.0.0.0:8080" || a.MaxBodyBytes != 1<<20 || a.ProduceTimeout != 3*time.Second || a.MaxWait != 30*time.Second {
		t.Errorf("api plan %+v: want the file's addr and produce_timeout, default body limit (1 MiB) and max wait (30s)", a)
	}
	if len(a.Tokens) != 1 || a.Tokens[0].Token != token || fmt.Sprint(a.Tokens[0].Pipelines) != "[p]" {
		t.Fatalf("tokens: want one, the value of $T, for pipeline p")
	}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
		for i, v := range []any{pl, *pl, a, a.Tokens[0], f, *f.API, *f.API.Tokens[0]} {
			if got := fmt.Sprintf(verb, v); strings.Contains(got, token) {
				t.Errorf("%s of value %d (%T) shows the token: %s", verb, i, v, got)
			}
		}
	}

	// Without an api block: the defaults, no address, no tokens.
	f, err = pipeline.Parse("x.yaml", []byte(
		"version: 1\npipelines: [{name: p, input: p.in, stages: [{name: a, filter: log}]}]\n"), env)
	if err != nil {
		t.Fatal(err)
	}
	if a := f.Plan().API; a.Addr != "" || a.MaxBodyBytes != pipeline.DefaultAPIMaxBodyBytes ||
		a.ProduceTimeout != pipeline.DefaultAPIProduceTimeout || a.MaxWait != pipeline.DefaultAPIMaxWait || a.Tokens != nil {
		t.Errorf("no api block: plan %+v, want the defaults", a)
	}

	// An address other hosts can reach needs tokens.
	_, err = pipeline.Parse("x.yaml", []byte("version: 1\napi: {addr: 0.0.0.0:8080}\n"+
		"pipelines: [{name: p, input: p.in, stages: [{name: a, filter: log}]}]\n"), env)
	if err == nil || !strings.Contains(err.Error(), `x.yaml:2:13: api addr "0.0.0.0:8080": an address other hosts can reach needs api.tokens`) {
		t.Errorf("an open api.addr without tokens: %v", err)
	}

	// A problem about a token never shows it, written or from the environment.
	for _, written := range []string{token, "${T}"} {
		bad := "version: 1\napi:\n  tokens: [{token: \"" + written + "\"}, {token: \"" + written + "\", pipelines: [x]}]\n" +
			"pipelines: [{name: p, input: p.in, stages: [{name: a, filter: log}]}]\n"
		_, err := pipeline.Parse("x.yaml", []byte(bad), env)
		if err == nil || !strings.Contains(err.Error(), "api token 2 is the same as token 1") || !strings.Contains(err.Error(), `no pipeline named "x"`) {
			t.Fatalf("want the duplicate token and the unknown pipeline, got %v", err)
		}
		if strings.Contains(err.Error(), token) {
			t.Errorf("a problem shows the token: %v", err)
		}
	}
}
