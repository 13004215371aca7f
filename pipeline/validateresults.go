package pipeline

import (
	"fmt"
	"net/url"
	"strings"
	"time"
)

// Bounds of a results block.
const (
	// maxResultsKeep keeps keep plus an hour, in milliseconds, far from
	// overflowing.
	maxResultsKeep   = 100 * 365 * 24 * time.Hour
	maxReplyMaxBytes = 1 << 20
)

// validate checks a pipeline's results block; where names the pipeline. The
// callback secret is never shown: no message here quotes it.
func (r *Results) validate(p *problems, where string) {
	if !r.decoded() {
		return
	}
	where += " results"
	if r.Set("keep") && (r.Keep <= 0 || r.Keep > maxResultsKeep) {
		p.add(r.Of("keep"), "keep must be more than 0s and at most %s, got %s",
			formatDuration(maxResultsKeep), p.shown(r.Of("keep"), formatDuration(r.Keep)))
	}
	if r.Set("reply_max_bytes") {
		checkRange(p, r.Positions, "reply_max_bytes", r.ReplyMaxBytes, 0, maxReplyMaxBytes)
	}
	topics := map[string]Pos{}
	for i, topic := range r.ReplyTopics {
		at := r.Item("reply_topics", i)
		if prev, dup := topics[topic]; dup {
			p.add(at, "%s: reply topic %s is listed twice (first at line %d)", where, p.quoted(at, topic), prev.Line)
		} else if !validTopic(topic) {
			p.add(at, "%s: reply topic %s is not a valid Kafka topic name (letters, digits, '.', '_', '-'; at most 249)",
				where, p.quoted(at, topic))
		}
		topics[topic] = at
	}
	for i, host := range r.CallbackHosts {
		if at := r.Item("callback_hosts", i); !validCallbackHost(host) {
			p.add(at, "%s: callback_hosts entry %d %s: want a host name (hooks.example.com), \"*.\" and a domain "+
				"for any of its subdomains (\"*.example.org\"), or an IP address; no scheme, port or path",
				where, i+1, p.quoted(at, host))
		}
	}
	if r.Callback != nil {
		r.validateCallback(p, where)
	}
}

// validateCallback checks the callback block and that its URL names one of
// the callback hosts.
func (r *Results) validateCallback(p *problems, where string) {
	c := r.Callback
	if !c.decoded() {
		return
	}
	if c.Set("timeout") {
		checkPositive(p, c.Positions, "timeout", c.Timeout)
	}
	c.Retry.validate(p)
	keep := r.Keep
	if !r.Set("keep") {
		keep = DefaultResultsKeep
	}
	if _, _, deadline := c.Retry.bounds(); keep > 0 && deadline > keep {
		at := c.Retry.Of("deadline")
		if !c.Retry.Set("deadline") {
			at = c.Of("retry")
			if !c.Set("retry") {
				at = c.Self
			}
		}
		p.add(at, "%s: callback retry deadline %s is longer than keep %s: the status topic keeps a pending callback "+
			"only keep plus an hour; lower the deadline or raise keep", where, formatDuration(deadline), formatDuration(keep))
	}
	switch {
	case !r.Set("callback_hosts"):
		p.add(r.Self, "%s: missing key \"callback_hosts\", which callback needs: the hosts its url may name, "+
			"such as [hooks.example.com, \"*.example.org\"]", where)
	case len(r.CallbackHosts) == 0:
		p.add(r.Of("callback_hosts"), "%s: callback_hosts lists no hosts: list those callback url may name", where)
	}
	if !c.Set("url") {
		p.add(c.Self, "%s: callback: missing key \"url\" (the http or https URL each finished job's status is POSTed to)", where)
		return
	}
	switch {
	case !c.Set("secret"):
		p.add(c.Self, "%s: callback: missing key \"secret\" (the HMAC-SHA256 key of X-Millrace-Signature; use ${ENV})", where)
	case c.Secret == "":
		p.add(c.Of("secret"), "%s: callback secret is empty: the HMAC-SHA256 key needs at least one byte", where)
	}
	at := c.Of("url")
	u, err := url.Parse(c.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" {
		p.add(at, "%s: callback url %s: want an http or https URL with a host, such as https://hooks.example.com/millrace",
			where, p.quoted(at, c.URL))
		return
	}
	if len(r.CallbackHosts) > 0 && !CallbackHostAllowed(u.Hostname(), r.CallbackHosts) {
		var allowed []string
		for i, h := range r.CallbackHosts {
			allowed = append(allowed, p.shown(r.Item("callback_hosts", i), h))
		}
		host := fmt.Sprintf("host %q", u.Hostname())
		if _, interpolated := p.sources[at]; interpolated {
			host = "its host" // part of a value from the environment
		}
		p.add(at, "%s: callback url %s: %s is not one of callback_hosts (allowed: %s)",
			where, p.quoted(at, c.URL), host, strings.Join(allowed, ", "))
	}
}

func (r CallbackRetry) validate(p *problems) {
	initial, max, deadline := r.bounds()
	for _, b := range []struct {
		key string
		d   time.Duration
	}{{"initial", initial}, {"max", max}, {"deadline", deadline}} {
		checkPositive(p, r.Positions, b.key, b.d)
	}
	if initial <= 0 || max <= 0 || !r.Set("initial") && !r.Set("max") || max >= initial {
		return
	}
	at, maxShown, initialShown := r.Of("max"), p.shown(r.Of("max"), formatDuration(max)), p.shown(r.Of("initial"), formatDuration(initial))
	if !r.Set("initial") {
		initialShown += " (the default initial)"
	} else if !r.Set("max") {
		at, maxShown = r.Of("initial"), maxShown+" (the default max)"
	}
	p.add(at, "retry max %s is less than initial %s", maxShown, initialShown)
}

// checkPositive reports a duration that is not more than 0s.
func checkPositive(p *problems, ps Positions, key string, d time.Duration) {
	if d <= 0 {
		p.add(ps.Of(key), "%s must be more than 0s, got %s", key, p.shown(ps.Of(key), formatDuration(d)))
	}
}

// validTopic reports whether topic is a name Kafka accepts.
func validTopic(topic string) bool {
	return topicPattern.MatchString(topic) && topic != "." && topic != ".."
}
