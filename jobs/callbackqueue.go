package jobs

import "time"

// Pending is one callback delivery: a finished job's status, to be POSTed
// to URL until it is delivered or given up. It is what the caller keeps
// durable (in the status topic) so that another process can finish it.
type Pending struct {
	// DeliveryID names the delivery; it is sent as HeaderDelivery on every
	// attempt, so receivers dedupe on it.
	DeliveryID string
	// Job is the id of the job; sent as HeaderJob.
	Job string
	// Body is the request body: the job's status JSON.
	Body []byte
	// URL is where it goes: http or https.
	URL string
	// Attempts is how many attempts have failed so far.
	Attempts int
	// NextAt is when the next attempt is due; a time in the past (or zero)
	// is due at once.
	NextAt time.Time
	// Deadline is when the delivery is given up (docs/jobs.md: retry.deadline
	// after the job finished). Required.
	Deadline time.Time
	// LastError is the error of the last failed attempt, as logged (no
	// secret, no query string); empty before the first.
	LastError string
}
