// Package jobs keeps the status of every job of a pipeline with `results:`
// in Kafka: the events each stage emits when it settles a record, their
// fold into a job's status, the folder that writes finished statuses,
// replies and callbacks, and the view that commands and the HTTP API read.
// docs/jobs.md is the contract.
package jobs

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"
)

// Outcome is what a stage did with a record for good, as an [Event] says.
type Outcome string

// The outcomes of an [Event].
const (
	// Accepted: the job was produced (by `millrace produce --wait` or the
	// HTTP API); no stage has read it yet.
	Accepted Outcome = "accepted"
	// Done: the filter returned Outputs records (0: the record was
	// dropped).
	Done Outcome = "done"
	// Skipped: a deduplicating stage had already processed the record's
	// key.
	Skipped Outcome = "skipped"
	// Quarantined: the record failed for good; Error says why.
	Quarantined Outcome = "quarantined"
)

// EventVersion is the version of the event format this build writes.
const EventVersion = 1

// Event is one record settled at one stage: the value of a record on
// `<pipeline>.jobs`, keyed by the job id, as JSON.
type Event struct {
	V int `json:"v"`
	// Job is the job id; in Kafka it is the record's key, not in the value.
	Job string `json:"-"`
	// Stage is the stage's name; N its 1-based index (0 for Accepted).
	Stage string `json:"stage,omitempty"`
	N     int    `json:"n"`
	// Lineage is the record's millrace-lineage header: its place in the
	// job's fan-out tree.
	Lineage string `json:"lineage,omitempty"`
	// Replays is the record's millrace-replays count.
	Replays int     `json:"replays,omitempty"`
	Outcome Outcome `json:"outcome"`
	// Outputs is how many records the filter returned (Done).
	Outputs int `json:"outputs,omitempty"`
	// Error is why a Quarantined record failed.
	Error string `json:"error,omitempty"`
	// Origin is "topic/partition/offset" of a quarantined record.
	Origin string `json:"origin,omitempty"`
	// At is when the stage settled the record (or the job was accepted).
	At time.Time `json:"at"`
	// ReplyTo and CorrelationID are the root record's millrace-reply-to
	// and millrace-correlation-id headers.
	ReplyTo       string `json:"reply_to,omitempty"`
	CorrelationID string `json:"correlation_id,omitempty"`
	// Results locates the outputs of a last stage that writes the
	// pipeline's output topic.
	Results []Location `json:"results,omitempty"`
}

// Location is where a record is in Kafka.
type Location struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Offset    int64  `json:"offset"`
}

// String is "topic/partition/offset", as millrace-origin writes it.
func (l Location) String() string {
	return l.Topic + "/" + strconv.FormatInt(int64(l.Partition), 10) + "/" + strconv.FormatInt(l.Offset, 10)
}

// Marshal is e's record value: the JSON document the struct's tags
// describe, written by hand (encoding/json's reflection was a tenth of a
// stage's CPU with results on).
func (e Event) Marshal() []byte { return e.AppendJSON(make([]byte, 0, 160)) }

// AppendJSON appends e's record value to b.
func (e Event) AppendJSON(b []byte) []byte {
	b = append(b, `{"v":`...)
	b = strconv.AppendInt(b, EventVersion, 10)
	b = appendField(b, "stage", e.Stage)
	b = append(b, `,"n":`...)
	b = strconv.AppendInt(b, int64(e.N), 10)
	b = appendField(b, "lineage", e.Lineage)
	if e.Replays != 0 {
		b = append(b, `,"replays":`...)
		b = strconv.AppendInt(b, int64(e.Replays), 10)
	}
	b = appendField(b, "outcome", string(e.Outcome))
	if e.Outputs != 0 {
		b = append(b, `,"outputs":`...)
		b = strconv.AppendInt(b, int64(e.Outputs), 10)
	}
	b = appendField(b, "error", e.Error)
	b = appendField(b, "origin", e.Origin)
	b = append(b, `,"at":"`...)
	b = e.At.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, '"')
	b = appendField(b, "reply_to", e.ReplyTo)
	b = appendField(b, "correlation_id", e.CorrelationID)
	if len(e.Results) > 0 {
		b = append(b, `,"results":[`...)
		for i, l := range e.Results {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"topic":`...)
			b = appendString(b, l.Topic)
			b = append(b, `,"partition":`...)
			b = strconv.AppendInt(b, int64(l.Partition), 10)
			b = append(b, `,"offset":`...)
			b = strconv.AppendInt(b, l.Offset, 10)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	return append(b, '}')
}

// appendField appends `,"name":"value"` unless value is empty.
func appendField(b []byte, name, value string) []byte {
	if value == "" {
		return b
	}
	b = append(b, `,"`...)
	b = append(b, name...)
	b = append(b, `":`...)
	return appendString(b, value)
}

// appendString appends s as a JSON string (RFC 8259): as it is when it is
// printable ASCII without a quote or backslash, else as encoding/json
// writes it.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			q, _ := json.Marshal(s)
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// ParseEvent reads the event of a record on `<pipeline>.jobs` with key job
// and value v. An event of a newer format version, or one that is not
// valid, is an error (the caller skips it and says so).
func ParseEvent(job string, v []byte) (Event, error) {
	var e Event
	if !decodeEvent(v, &e) {
		e = Event{}
		if err := json.Unmarshal(v, &e); err != nil {
			return Event{}, fmt.Errorf("job %q: not a job event: %w", job, err)
		}
	}
	if e.V > EventVersion {
		return Event{}, fmt.Errorf("job %q: event format version %d is newer than this build's %d", job, e.V, EventVersion)
	}
	switch e.Outcome {
	case Accepted, Done, Skipped, Quarantined:
	default:
		return Event{}, fmt.Errorf("job %q: unknown outcome %q", job, e.Outcome)
	}
	if e.Outcome != Accepted && e.N < 1 {
		return Event{}, fmt.Errorf("job %q: event without a stage index", job)
	}
	e.Job = job
	return e, nil
}

// ChildLineage is the lineage of output i (0-based) of a record with
// lineage parent.
func ChildLineage(parent string, i int) string {
	if parent == "" {
		return strconv.Itoa(i)
	}
	return parent + "." + strconv.Itoa(i)
}
