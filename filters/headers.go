package filters

import "bytes"

// Header is one record header: a name and a value. A Kafka record's
// headers are an ordered list in which a name may repeat (KIP-82), and a
// value may be null: Value nil is a null value, distinct from an empty one.
type Header struct {
	Key   string
	Value []byte
}

// Headers are a record's headers in their order on the record, a name
// possibly repeated (KIP-82). millrace carries them through a stage as they
// are: in order, repeats kept, values byte for byte. The helpers read the
// last value of a name, as Kafka's Headers.lastHeader does.
//
// The value bytes may be shared with the record the stage read: replace a
// value (Set, Add, or assign a new slice), never modify its bytes in place.
type Headers []Header

// Lookup returns the value of the last header named key, and whether there
// is one.
func (h Headers) Lookup(key string) ([]byte, bool) {
	for i := len(h) - 1; i >= 0; i-- {
		if h[i].Key == key {
			return h[i].Value, true
		}
	}
	return nil, false
}

// Get returns the value of the last header named key as a string; "" if
// there is none.
func (h Headers) Get(key string) string {
	v, _ := h.Lookup(key)
	return string(v)
}

// Has reports whether a header is named key.
func (h Headers) Has(key string) bool {
	_, ok := h.Lookup(key)
	return ok
}

// Values returns the values of every header named key, in order.
func (h Headers) Values(key string) []string {
	var vs []string
	for _, x := range h {
		if x.Key == key {
			vs = append(vs, string(x.Value))
		}
	}
	return vs
}

// Set gives key the one value value: the first header named key gets it and
// keeps its place, later ones are removed; with none, it is added at the end.
func (h *Headers) Set(key, value string) {
	h.SetBytes(key, []byte(value))
}

// SetBytes is Set with the value as bytes (nil: a null value).
func (h *Headers) SetBytes(key string, value []byte) {
	hs := *h
	at := -1
	n := 0
	for _, x := range hs {
		if x.Key == key {
			if at >= 0 {
				continue
			}
			at = n
			x.Value = value
		}
		hs[n] = x
		n++
	}
	clear(hs[n:])
	hs = hs[:n]
	if at < 0 {
		hs = append(hs, Header{Key: key, Value: value})
	}
	*h = hs
}

// Add appends a header named key, after any others of that name.
func (h *Headers) Add(key, value string) {
	*h = append(*h, Header{Key: key, Value: []byte(value)})
}

// Del removes every header named key.
func (h *Headers) Del(key string) {
	hs := *h
	n := 0
	for _, x := range hs {
		if x.Key != key {
			hs[n] = x
			n++
		}
	}
	clear(hs[n:])
	*h = hs[:n]
}

// Clone returns a deep copy of h: values are copied too.
func (h Headers) Clone() Headers {
	if h == nil {
		return nil
	}
	c := make(Headers, len(h))
	for i, x := range h {
		c[i] = Header{Key: x.Key, Value: bytes.Clone(x.Value)}
	}
	return c
}

// Record headers millrace sets. Filters use these constants, never literals.
const (
	// HeaderJob is the job id, given to each record by `millrace produce` (or
	// the first stage when absent) and kept across every stage.
	HeaderJob = "millrace-job"
	// HeaderStage names the stage that produced the record.
	HeaderStage = "millrace-stage"
	// HeaderAttempt counts the attempts made to process the record.
	HeaderAttempt = "millrace-attempt"
	// HeaderError is the error text of the last failure.
	HeaderError = "millrace-error"
	// HeaderOrigin is "topic/partition/offset" of the failing record.
	HeaderOrigin = "millrace-origin"
	// HeaderReplays counts how often a quarantined record was replayed.
	HeaderReplays = "millrace-replays"
	// HeaderFirstFailure and HeaderLastFailure are the RFC 3339 times of a
	// quarantined record's first and last failure.
	HeaderFirstFailure = "millrace-first-failure"
	HeaderLastFailure  = "millrace-last-failure"
	// HeaderStack is a short stack summary of a filter that panicked.
	HeaderStack = "millrace-stack"
	// HeaderRetryAt is the RFC 3339 time a record in a retry tier is due.
	HeaderRetryAt = "millrace-retry-at"
	// HeaderDedup marks the outputs of a deduplicating stage with the
	// stage, input partition, output index and count, and dedup key of the
	// record they came from ("stage partition i n key"); millrace's own
	// bookkeeping (see router: dedup).
	HeaderDedup = "millrace-dedup"
	// HeaderTruncated marks a quarantined record that could not be written
	// whole (over the producer's or broker's size limit): an envelope with
	// the failure headers, the original key and headers where they fit, and
	// the first bytes of the payload. Its value gives the original sizes
	// ("payload=N key=N headers=N", in bytes). Such a record cannot be
	// replayed.
	HeaderTruncated = "millrace-truncated"
	// HeaderLineage is a record's place in its job's fan-out tree, on
	// pipelines with `results:`: empty for the record that entered the
	// pipeline, "i" for its output i (0-based), "i.j" for output j of
	// that one, and so on (see docs/jobs.md). The stage sets it on each
	// output; a filter's own value is not kept.
	HeaderLineage = "millrace-lineage"
	// HeaderReplyTo names the topic a job's reply goes to when it
	// finishes, on a pipeline with `results:` that allows the topic
	// (results.reply_topics); the reply is keyed by HeaderCorrelationID.
	HeaderReplyTo = "millrace-reply-to"
	// HeaderCorrelationID is the caller's id for a job, given back as the
	// key of its reply (the request-reply pattern's correlation
	// identifier).
	HeaderCorrelationID = "millrace-correlation-id"
	// HeaderSchedule is "pipeline/name" of the schedule that fired the
	// record (pipelines.yaml `schedules:`), on a pipeline's input record.
	HeaderSchedule = "millrace-schedule"
	// HeaderScheduledTime is the RFC 3339 time of the tick that fired the
	// record, in the schedule's time zone: the time it was due, not when
	// it was sent.
	HeaderScheduledTime = "millrace-scheduled-time"
)

// failureHeaders are the headers that describe a failure; they stay with
// a record in retry tiers and quarantine, never on a stage's outputs.
var failureHeaders = []string{HeaderError, HeaderOrigin, HeaderFirstFailure, HeaderLastFailure, HeaderStack, HeaderRetryAt, HeaderDedup, HeaderTruncated}

// FailureHeaders returns the names of the headers that describe a failure
// (error, origin, failure times, stack, retry time).
func FailureHeaders() []string { return append([]string(nil), failureHeaders...) }

// HeadersOf returns headers from name, value pairs, in order; a name may
// repeat. It panics on an odd number of arguments.
func HeadersOf(kv ...string) Headers {
	if len(kv)%2 != 0 {
		panic("filters.HeadersOf: odd number of arguments")
	}
	h := make(Headers, 0, len(kv)/2)
	for i := 0; i < len(kv); i += 2 {
		h = append(h, Header{Key: kv[i], Value: []byte(kv[i+1])})
	}
	return h
}
