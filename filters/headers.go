package filters

// Headers are record headers, by name.
type Headers map[string]string

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
)

// failureHeaders are the headers that describe a failure; they stay with
// a record in retry tiers and quarantine, never on a stage's outputs.
var failureHeaders = []string{HeaderError, HeaderOrigin, HeaderFirstFailure, HeaderLastFailure, HeaderStack, HeaderRetryAt, HeaderDedup}

// FailureHeaders returns the names of the headers that describe a failure
// (error, origin, failure times, stack, retry time).
func FailureHeaders() []string { return append([]string(nil), failureHeaders...) }
