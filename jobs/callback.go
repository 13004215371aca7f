package jobs

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// The headers of a callback request (docs/jobs.md, "Callbacks").
const (
	// HeaderDelivery is the delivery id: the same on every attempt of one
	// delivery, so a receiver dedupes on it.
	HeaderDelivery = "X-Millrace-Delivery"
	// HeaderJob is the id of the job whose status is the body.
	HeaderJob = "X-Millrace-Job"
	// HeaderSignature is Sign(secret, body).
	HeaderSignature = "X-Millrace-Signature"
)

const signaturePrefix = "sha256="

// Sign returns the HeaderSignature value for body: "sha256=" followed by
// the lowercase hex HMAC-SHA256 of body keyed with secret (71 bytes). It is
// the scheme of GitHub's X-Hub-Signature-256 webhook header, so receivers
// can reuse the code they verify GitHub deliveries with.
func Sign(secret, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return signaturePrefix + hex.EncodeToString(m.Sum(nil))
}

// VerifySignature reports whether header, a HeaderSignature value, is the
// signature of body with secret (Sign). The digest is compared in constant
// time; hex digits may be of either case. A header without the "sha256="
// prefix, or whose digest is not 64 hex digits, is false.
func VerifySignature(secret, body []byte, header string) bool {
	digest, ok := strings.CutPrefix(header, signaturePrefix)
	if !ok {
		return false
	}
	got, err := hex.DecodeString(digest)
	if err != nil || len(got) != sha256.Size {
		return false
	}
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return hmac.Equal(got, m.Sum(nil))
}

// ErrCallbackRefused is wrapped by the error of a callback whose URL the
// Poster will not send to: it does not parse, its scheme is not http or
// https, or its host is not allowed. No request is made, and a retry
// cannot help.
var ErrCallbackRefused = errors.New("URL refused")

// PosterConfig configures a Poster.
type PosterConfig struct {
	// Secret keys the HMAC of HeaderSignature. Required.
	Secret []byte
	// AllowHost reports whether callbacks may be sent to host: the URL's
	// host name in lower case, without port or IPv6 brackets
	// ("hooks.example.com", "10.0.0.7", "::1"). Required; the matcher of
	// the allowed hosts is another package's.
	AllowHost func(host string) bool
	// Timeout bounds one attempt, from dialling to reading the response
	// body; an attempt that takes longer is a retryable failure. It runs
	// on the real clock, like the network. Default 10s (GitHub's webhook
	// timeout).
	Timeout time.Duration
	// Transport sends the requests; nil means http.DefaultTransport.
	Transport http.RoundTripper
}

func (c *PosterConfig) setDefaults() {
	if c.Timeout <= 0 {
		c.Timeout = 10 * time.Second
	}
}

// Validate reports what is missing from the config.
func (c PosterConfig) Validate() error {
	if len(c.Secret) == 0 {
		return errors.New("no secret")
	}
	if c.AllowHost == nil {
		return errors.New("no host matcher (AllowHost)")
	}
	return nil
}

// Poster makes single callback attempts. It is safe for concurrent use.
type Poster struct {
	cfg    PosterConfig
	client *http.Client
}

// NewPoster returns a Poster, or an error wrapping what the config lacks.
func NewPoster(cfg PosterConfig) (*Poster, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("invalid callback poster config: %w", err)
	}
	return &Poster{cfg: cfg, client: &http.Client{
		Transport: cfg.Transport,
		// A redirect is not followed: its target has not been checked
		// against AllowHost. The 3xx is a permanent failure.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}, nil
}

// drainLimit is how much of a response body Post reads, so that the
// connection can be reused, before it closes the body.
const drainLimit = 4 << 10

// Post makes one attempt to deliver c: it POSTs c.Body to c.URL with the
// headers of docs/jobs.md "Callbacks" (Content-Type: application/json,
// HeaderDelivery c.DeliveryID, HeaderJob c.Job, HeaderSignature, and
// User-Agent: millrace). Other fields of c are not used.
//
// It returns nil on a 2xx response. Otherwise the error is a
// *CallbackError, which says whether a retry may help: a 408, a 429, a 5xx,
// a network error and a timeout are retryable (a Retry-After in seconds
// sets the least delay, RFC 9110 §10.2.3); any other status (3xx
// included: redirects are not followed) is permanent. A URL that does not
// parse, whose scheme is not http or https, or whose host AllowHost
// refuses, is refused without a request: a permanent error wrapping
// ErrCallbackRefused. Errors show the URL as scheme://host/path only: its
// userinfo and query may hold tokens. They never hold the secret or the
// body.
func (p *Poster) Post(ctx context.Context, c Pending) error {
	u, err := p.target(c.URL)
	if err != nil {
		return err
	}
	shown := redactURL(u)
	actx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(actx, http.MethodPost, u.String(), bytes.NewReader(c.Body))
	if err != nil {
		return &CallbackError{URL: shown, Err: withoutURL(err)}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "millrace")
	req.Header.Set(HeaderDelivery, c.DeliveryID)
	req.Header.Set(HeaderJob, c.Job)
	req.Header.Set(HeaderSignature, Sign(p.cfg.Secret, c.Body))
	resp, err := p.client.Do(req)
	if err != nil {
		err = withoutURL(err)
		if ctx.Err() == nil && actx.Err() != nil {
			err = fmt.Errorf("no response within %s: %w", p.cfg.Timeout, err)
		}
		return &CallbackError{URL: shown, Retryable: true, Err: err}
	}
	defer func() {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, drainLimit))
		_ = resp.Body.Close()
	}()
	if resp.StatusCode >= 200 && resp.StatusCode <= 299 {
		return nil
	}
	e := &CallbackError{URL: shown, Status: resp.StatusCode, Retryable: retryableStatus(resp.StatusCode)}
	if e.Retryable {
		e.RetryAfter = retryAfter(resp.Header.Get("Retry-After"))
	}
	return e
}

// target parses rawURL and checks it may be sent to.
func (p *Poster) target(rawURL string) (*url.URL, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		// Not even the parser's message: it may quote a part of the
		// userinfo ("invalid port" of a password with a '/').
		return nil, &CallbackError{URL: "(unparsable URL)", Err: fmt.Errorf("%w: it does not parse", ErrCallbackRefused)}
	}
	shown := redactURL(u)
	refuse := func(format string, args ...any) error {
		return &CallbackError{URL: shown, Err: fmt.Errorf("%w: "+format, append([]any{ErrCallbackRefused}, args...)...)}
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, refuse("scheme %q is not http or https", u.Scheme)
	}
	host := strings.ToLower(u.Hostname())
	if host == "" {
		return nil, refuse("no host")
	}
	if !p.cfg.AllowHost(host) {
		return nil, refuse("host %q is not allowed", host)
	}
	return u, nil
}

// retryableStatus reports whether a retry may help a response of status:
// 408 Request Timeout, 429 Too Many Requests, and 5xx (docs/jobs.md).
func retryableStatus(status int) bool {
	return status == http.StatusRequestTimeout || status == http.StatusTooManyRequests ||
		status >= 500 && status <= 599
}

// maxRetryAfter keeps a huge Retry-After from overflowing a Duration.
const maxRetryAfter = math.MaxInt64 / int64(time.Second)

// retryAfter is the delay of a Retry-After value in seconds; 0 when it is
// absent or not a number of seconds (the HTTP-date form is ignored).
func retryAfter(v string) time.Duration {
	secs, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil || secs <= 0 {
		return 0
	}
	return time.Duration(min(secs, maxRetryAfter)) * time.Second
}

// CallbackError is the error of a failed callback attempt (Poster.Post).
type CallbackError struct {
	// URL is the callback's URL as scheme://host/path: without userinfo,
	// query or fragment.
	URL string
	// Status is the response's HTTP status; 0 when there was no response
	// (refused, or a network error or timeout).
	Status int
	// Retryable says whether another attempt may succeed.
	Retryable bool
	// RetryAfter is the least delay before another attempt the response
	// asked for (its Retry-After, in whole seconds); 0 when it did not.
	RetryAfter time.Duration
	// Err is the cause when there was no response; nil when there was.
	Err error
}

// Error says where the attempt went and what came of it, and whether it is
// worth retrying.
func (e *CallbackError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "callback to %s: ", e.URL)
	if e.Status != 0 {
		fmt.Fprintf(&b, "status %d", e.Status)
		if t := http.StatusText(e.Status); t != "" {
			fmt.Fprintf(&b, " %s", t)
		}
	} else {
		fmt.Fprintf(&b, "%v", e.Err)
	}
	switch {
	case !e.Retryable:
		b.WriteString(" (permanent)")
	case e.RetryAfter > 0:
		fmt.Fprintf(&b, " (retryable after %s)", e.RetryAfter)
	default:
		b.WriteString(" (retryable)")
	}
	return b.String()
}

// Unwrap returns the cause when there was no response.
func (e *CallbackError) Unwrap() error { return e.Err }

// redactURL is u as scheme://host/path: userinfo and query may hold tokens.
func redactURL(u *url.URL) string {
	r := url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path, RawPath: u.RawPath}
	return r.String()
}

// withoutURL is err without the *url.Error around it, whose message
// holds the whole URL, query and all.
func withoutURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
