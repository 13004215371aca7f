package pipeline

import (
	"fmt"
	"net"
	"strings"
	"time"
)

// Defaults of the `api:` block.
const (
	// DefaultAPIAddr is where `millrace serve` listens without an address.
	DefaultAPIAddr = "127.0.0.1:8080"
	// DefaultAPIMaxBodyBytes is the largest request body: 1 MiB.
	DefaultAPIMaxBodyBytes = 1 << 20
	// DefaultAPIProduceTimeout bounds the wait for the broker's ack of a
	// submitted job.
	DefaultAPIProduceTimeout = 10 * time.Second
	// DefaultAPIMaxWait is the longest long-poll (?wait=): under the idle
	// timeout of common proxies and load balancers (60 s for AWS ALB and
	// nginx), with room for the answer.
	DefaultAPIMaxWait = 30 * time.Second
)

// Bounds of the `api:` block.
const (
	// maxAPIBodyBytes is the most max_body_bytes may be: 64 MiB, far
	// above Kafka's default record limit (message.max.bytes, 1 MiB).
	maxAPIBodyBytes                      = 64 << 20
	minProduceTimeout, maxProduceTimeout = time.Second, 5 * time.Minute
	maxAPIWait                           = 10 * time.Minute
)

// APIPlan is how the HTTP jobs API serves: the `api:` block with its
// defaults. Formatted with fmt (any verb), it shows no token.
type APIPlan struct {
	// Addr is the address of the file ("" when it sets none).
	Addr string
	// MaxBodyBytes is the largest request body, in bytes.
	MaxBodyBytes int
	// ProduceTimeout bounds the wait for the broker's ack of a submission.
	ProduceTimeout time.Duration
	// MaxWait is the longest long-poll.
	MaxWait time.Duration
	// Tokens are the accepted bearer tokens; none: requests need none.
	Tokens []APITokenPlan
}

// APITokenPlan is one bearer token and the pipelines it may use (nil:
// every pipeline).
type APITokenPlan struct {
	Token     string
	Pipelines []string
}

// String shows t with its token redacted.
func (t APITokenPlan) String() string {
	return fmt.Sprintf("{Token:%s Pipelines:%v}", redacted(t.Token), t.Pipelines)
}

// Format writes [APITokenPlan.String] whatever the verb.
func (t APITokenPlan) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(t.String())) }

// apiPlan is the API's plan: defaults for what a is silent on (a may be
// nil).
func (a *API) apiPlan() APIPlan {
	pl := APIPlan{MaxBodyBytes: DefaultAPIMaxBodyBytes, ProduceTimeout: DefaultAPIProduceTimeout, MaxWait: DefaultAPIMaxWait}
	if a == nil {
		return pl
	}
	pl.Addr = a.Addr
	if a.Set("max_body_bytes") {
		pl.MaxBodyBytes = a.MaxBodyBytes
	}
	if a.Set("produce_timeout") {
		pl.ProduceTimeout = a.ProduceTimeout
	}
	if a.Set("max_wait") {
		pl.MaxWait = a.MaxWait
	}
	for _, t := range a.Tokens {
		if t == nil {
			continue
		}
		pl.Tokens = append(pl.Tokens, APITokenPlan{Token: t.Token, Pipelines: t.Pipelines})
	}
	return pl
}

// loopback reports whether host can only be reached from this machine: a
// loopback IP or "localhost" (an empty host is every interface).
func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func (a *API) validate(p *problems, pipelines map[string]Pos) {
	if !a.decoded() {
		return
	}
	if a.Addr != "" {
		host, port, err := net.SplitHostPort(a.Addr)
		at := a.Of("addr")
		switch {
		case err != nil || !validPort(port):
			p.add(at, "api addr %s: want host:port (port 0..65535)", p.quoted(at, a.Addr))
		case !loopback(host) && len(a.Tokens) == 0:
			p.add(at, "api addr %s: an address other hosts can reach needs api.tokens (bearer tokens, from ${ENV}); "+
				"or listen on 127.0.0.1", p.quoted(at, a.Addr))
		}
	}
	if a.Set("max_body_bytes") {
		checkRange(p, a.Positions, "max_body_bytes", a.MaxBodyBytes, 1, maxAPIBodyBytes)
	}
	if a.Set("produce_timeout") && (a.ProduceTimeout < minProduceTimeout || a.ProduceTimeout > maxProduceTimeout) {
		at := a.Of("produce_timeout")
		p.add(at, "produce_timeout must be between %s and %s, got %s", formatDuration(minProduceTimeout),
			formatDuration(maxProduceTimeout), p.shown(at, formatDuration(a.ProduceTimeout)))
	}
	if a.Set("max_wait") && (a.MaxWait <= 0 || a.MaxWait > maxAPIWait) {
		at := a.Of("max_wait")
		p.add(at, "max_wait must be more than 0s and at most %s, got %s", formatDuration(maxAPIWait),
			p.shown(at, formatDuration(a.MaxWait)))
	}
	seen := map[string]int{}
	for i, t := range a.Tokens {
		if t == nil || !t.decoded() {
			continue
		}
		at := t.Of("token")
		switch {
		case !t.Set("token") || t.Token == "":
			// Never show a token: only where it is.
			p.add(at, "api token %d: missing or empty token (use ${ENV} to take it from the environment)", i+1)
		case strings.TrimSpace(t.Token) != t.Token || strings.ContainsAny(t.Token, " \t\r\n"):
			p.add(at, "api token %d: a bearer token has no white space", i+1)
		default:
			if prev, dup := seen[t.Token]; dup {
				p.add(at, "api token %d is the same as token %d", i+1, prev)
			} else {
				seen[t.Token] = i + 1
			}
		}
		for j, name := range t.Pipelines {
			if _, ok := pipelines[name]; !ok {
				at := t.Item("pipelines", j)
				p.add(at, "api token %d: no pipeline named %s", i+1, p.quoted(at, name))
			}
		}
	}
}
