package pipeline

import (
	"fmt"
	"net/url"
	"strconv"
	"time"
)

// ResultsPlan is how a pipeline with a `results:` block keeps the status of
// its jobs (docs/jobs.md is the contract). A [PipelinePlan] and each of its
// [StagePlan]s share one; it is nil on a pipeline without results.
type ResultsPlan struct {
	// Keep is how long a finished job is kept: readers skip a job that
	// finished longer ago, and the events and status topics retain
	// records for Keep plus an hour. Default [DefaultResultsKeep].
	Keep time.Duration
	// ReplyTopics are the only topics a record may name in its
	// millrace-reply-to header; a reply to any other topic is refused
	// (the job still runs). Empty: no replies are sent.
	ReplyTopics []string
	// ReplyMaxBytes is the most output bytes, in all, a reply holds
	// inline; a job with more gets their topic/partition/offset instead.
	// 0..1048576, default [DefaultReplyMaxBytes].
	ReplyMaxBytes int
	// Callback is nil unless finished jobs are POSTed to a URL.
	Callback *CallbackPlan
	// CallbackHosts are the hosts Callback.URL may name, as written (see
	// [CallbackHostAllowed]); validation checks the URL against them.
	CallbackHosts []string

	// EventsTopic is where every stage emits its job events:
	// [JobsTopic] of the pipeline.
	EventsTopic string
	// StatusTopic is the compacted topic of finished jobs' status:
	// [JobStatusTopic] of the pipeline.
	StatusTopic string
	// Group is the consumer group of the job folder: [JobsGroup] of the
	// pipeline.
	Group string
}

// CallbackPlan is where and how the status of each finished job is POSTed.
// Formatted with fmt (any verb: %v, %+v, %#v, %s…) it shows neither Secret
// nor a password in URL.
type CallbackPlan struct {
	// URL is an http or https URL whose host is one of the pipeline's
	// CallbackHosts.
	URL string
	// Secret is the HMAC-SHA256 key of X-Millrace-Signature.
	Secret string
	// Timeout bounds one POST; default [DefaultCallbackTimeout].
	Timeout time.Duration
	// RetryInitial is the first wait before a retry and RetryMax the
	// longest (the waits grow exponentially, jittered); a delivery is given
	// up RetryDeadline after its job finished. Defaults
	// [DefaultCallbackRetryInitial], [DefaultCallbackRetryMax] and
	// [DefaultCallbackRetryDeadline]; RetryInitial <= RetryMax.
	RetryInitial, RetryMax, RetryDeadline time.Duration
}

// String shows c with its secret (and any password in its URL) redacted.
func (c CallbackPlan) String() string {
	return fmt.Sprintf("{URL:%s Secret:%s Timeout:%s RetryInitial:%s RetryMax:%s RetryDeadline:%s}",
		redactedURL(c.URL), redacted(c.Secret), c.Timeout, c.RetryInitial, c.RetryMax, c.RetryDeadline)
}

// Format writes [CallbackPlan.String] whatever the verb, so that no way of
// printing a plan shows the secret.
func (c CallbackPlan) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(c.String())) }

// redacted stands for a secret in what is printed.
func redacted(secret string) string {
	if secret == "" {
		return `""`
	}
	return "[redacted]"
}

// redactedURL is raw with the password of its user info redacted.
func redactedURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "[not a URL]"
	}
	return strconv.Quote(u.Redacted())
}

// JobsTopicConfig is the topic config of a job events topic: records are
// deleted keep plus an hour after they were written, in segments of at
// most keep (at least an hour).
func JobsTopicConfig(keep time.Duration) map[string]string {
	return map[string]string{
		"cleanup.policy": "delete",
		"retention.ms":   millis(keep + time.Hour),
		"segment.ms":     millis(max(keep, time.Hour)),
	}
}

// JobStatusTopicConfig is the topic config of a job status topic:
// compacted (the latest status of each job) and, so that jobs long
// forgotten do not pile up, records older than keep plus an hour are
// deleted, in segments of at most keep (at least an hour).
func JobStatusTopicConfig(keep time.Duration) map[string]string {
	cfg := JobsTopicConfig(keep)
	cfg["cleanup.policy"] = "compact,delete"
	return cfg
}

func millis(d time.Duration) string { return strconv.FormatInt(d.Milliseconds(), 10) }
