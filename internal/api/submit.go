package api

import (
	"bytes"
	"cmp"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/IBM/sarama"
	"github.com/google/uuid"

	"github.com/millrace/millrace/filters"
	"github.com/millrace/millrace/jobs"
	"github.com/millrace/millrace/pipeline"
	"github.com/millrace/millrace/transport"
)

// Request headers of a submission.
const (
	// headerKey is the record key (the ordering key).
	headerKey = "Millrace-Key"
	// headerPrefix starts a header that becomes a record header: the rest
	// of its name, lower case, is the record header's name.
	headerPrefix = "Millrace-Header-"
	// headerIdempotency makes the job id a function of the pipeline and
	// the key (draft-ietf-httpapi-idempotency-key-header).
	headerIdempotency = "Idempotency-Key"
	// maxIdempotencyKey is the longest Idempotency-Key, in bytes.
	maxIdempotencyKey = 255
	// millraceHeaders starts the record headers millrace sets (DESIGN.md
	// §3); a request may set only the reply ones.
	millraceHeaders = "millrace-"
	// maxBatchJobs is the most jobs one batch may hold.
	maxBatchJobs = 10000
)

// idempotencySpace is the UUID namespace of the job ids derived from
// Idempotency-Key (RFC 9562 §5.5, a name-based UUID with SHA-1).
var idempotencySpace = uuid.MustParse("1b4e28ba-2fa1-41d2-883f-0016d3cca427")

// jobID is a new job's id: a random UUID, or with an idempotency key the
// name-based UUID of the key's scope (the pipeline, and the token), the
// key and (in a batch) the line.
func jobID(scope, key string, line int) string {
	if key == "" {
		return uuid.NewString()
	}
	name := scope + "\x00" + key
	if line > 0 {
		name += "\x00" + strconv.Itoa(line)
	}
	return uuid.NewSHA1(idempotencySpace, []byte(name)).String()
}

// Accepted is the answer to a submission: 202, Location: StatusURL.
type Accepted struct {
	JobID     string `json:"job_id"`
	StatusURL string `json:"status_url"`
}

// statusURL is where the status of job id of pipeline pl is asked.
func statusURL(pl *pipeline.PipelinePlan, id string) string {
	if pl.Results == nil {
		return "/v1/pipelines/" + pl.Name + "/jobs/" + id // answers 409, saying why
	}
	return "/v1/jobs/" + id
}

// submission reads what every submission needs: the token's pipeline,
// the record headers and the body. Its problem, if any, is the answer.
func (s *Server) submission(w http.ResponseWriter, r *http.Request) (*pipeline.PipelinePlan, meta, []byte, *Problem) {
	t, p := s.authorize(r)
	if p != nil {
		return nil, meta{}, nil, p
	}
	pl, p := s.pipeline(r, t)
	if p != nil {
		return nil, meta{}, nil, p
	}
	m, p := recordMeta(r)
	if p != nil {
		return nil, meta{}, nil, p
	}
	if p := replyTopicAllowed(pl, m.headers); p != nil {
		return nil, meta{}, nil, p
	}
	// Keys are the client's: two tokens that happen to use one key get two
	// jobs (with dedup, the second would silently never run, and its client
	// would read the first one's status).
	m.idempotencyScope = pl.Name + "\x00" + hex.EncodeToString(t.sum[:])
	if r.Pattern == routeBatch {
		if m.key != nil {
			return nil, meta{}, nil, problem(http.StatusBadRequest, typeBadRequest,
				"%s does not apply to a batch: each line is a job without a key", headerKey)
		}
		m.headers = slices.DeleteFunc(m.headers, func(h sarama.RecordHeader) bool { // the batch's (NDJSON), not a line's
			return string(h.Key) == "content-type"
		})
	}
	body, p := s.readBody(w, r)
	return pl, m, body, p
}

func (s *Server) submit(w http.ResponseWriter, r *http.Request) {
	pl, meta, body, p := s.submission(w, r)
	if p != nil {
		p.write(w, r)
		return
	}
	id := jobID(meta.idempotencyScope, meta.idempotency, 0)
	if err := s.produce(pl, []submission{{id: id, value: body}}, meta)[0]; err != nil {
		p := produceProblem(pl, err)
		noteFailure(w, err)
		p.write(w, r)
		return
	}
	s.metrics.submitted.WithLabelValues(pl.Name).Inc()
	url := statusURL(pl, id)
	w.Header().Set("Location", url)
	w.Header().Set("Retry-After", retryAfter(retryAfterRunning))
	writeJSON(w, http.StatusAccepted, Accepted{JobID: id, StatusURL: url})
}

// BatchLine is the outcome of one line of a batch: its job, or why it
// was not submitted (Status is the code a single submission would have
// answered).
type BatchLine struct {
	// Line is the 1-based line number in the body.
	Line      int      `json:"line"`
	Status    int      `json:"status"`
	JobID     string   `json:"job_id,omitempty"`
	StatusURL string   `json:"status_url,omitempty"`
	Error     *Problem `json:"error,omitempty"`
}

// Batch is the answer to a batch: a line per job line of the body, in
// order; 202 when each was accepted, else 207 (some were not) or the
// status of the first failure (none was).
type Batch struct {
	Accepted int         `json:"accepted"`
	Failed   int         `json:"failed"`
	Jobs     []BatchLine `json:"jobs"`
}

func (s *Server) submitBatch(w http.ResponseWriter, r *http.Request) {
	pl, meta, body, p := s.submission(w, r)
	if p != nil {
		p.write(w, r)
		return
	}
	var subs []submission
	var lines []int
	n := 0
	for line := range bytes.Lines(body) { // slices of body: each value stays its own
		n++
		line = bytes.TrimSuffix(bytes.TrimSuffix(line, []byte("\n")), []byte("\r"))
		if len(bytes.TrimSpace(line)) == 0 {
			continue // blank lines are no jobs
		}
		subs = append(subs, submission{id: jobID(meta.idempotencyScope, meta.idempotency, n), value: line})
		lines = append(lines, n)
	}
	switch {
	case len(subs) == 0:
		problem(http.StatusBadRequest, typeBadRequest, "the batch has no jobs: send one payload per line (NDJSON)").write(w, r)
		return
	case len(subs) > maxBatchJobs:
		problem(http.StatusRequestEntityTooLarge, typeTooLarge, "the batch has %d jobs, over the limit of %d a batch: split it",
			len(subs), maxBatchJobs).write(w, r)
		return
	}
	errs := s.produce(pl, subs, meta)
	out := Batch{Jobs: make([]BatchLine, len(subs))}
	var first *Problem
	for i, sub := range subs {
		bl := BatchLine{Line: lines[i], Status: http.StatusAccepted}
		if err := errs[i]; err != nil {
			bl.Error = produceProblem(pl, err)
			bl.Status, bl.Error.Instance = bl.Error.Status, r.URL.Path
			first = cmp.Or(first, bl.Error)
			noteFailure(w, err)
			out.Failed++
		} else {
			bl.JobID, bl.StatusURL = sub.id, statusURL(pl, sub.id)
			out.Accepted++
		}
		out.Jobs[i] = bl
	}
	s.metrics.submitted.WithLabelValues(pl.Name).Add(float64(out.Accepted))
	code := http.StatusAccepted
	switch {
	case out.Accepted == 0:
		code = first.Status
		if first.RetryAfter > 0 {
			w.Header().Set("Retry-After", retryAfter(first.RetryAfter))
		}
	case out.Failed > 0:
		code = http.StatusMultiStatus
	}
	writeJSON(w, code, out)
}

// meta is what a submission's headers say of its records.
type meta struct {
	key         []byte // nil: no key
	headers     []sarama.RecordHeader
	idempotency string
	// idempotencyScope is what an idempotency key is unique in: the
	// pipeline and the token.
	idempotencyScope string
}

// recordMeta reads the record key, headers and idempotency key of r.
func recordMeta(r *http.Request) (meta, *Problem) {
	var m meta
	if vs := r.Header.Values(headerKey); len(vs) > 1 {
		return m, problem(http.StatusBadRequest, typeBadRequest, "%s given %d times: a record has one key", headerKey, len(vs))
	} else if len(vs) == 1 && vs[0] != "" {
		m.key = []byte(vs[0])
	}
	if vs := r.Header.Values(headerIdempotency); len(vs) > 1 {
		return m, problem(http.StatusBadRequest, typeBadRequest, "%s given %d times", headerIdempotency, len(vs))
	} else if len(vs) == 1 {
		m.idempotency = vs[0]
		if m.idempotency == "" || len(m.idempotency) > maxIdempotencyKey {
			return m, problem(http.StatusBadRequest, typeBadRequest, "%s must be 1 to %d bytes, got %d", headerIdempotency,
				maxIdempotencyKey, len(m.idempotency))
		}
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		m.headers = append(m.headers, sarama.RecordHeader{Key: []byte("content-type"), Value: []byte(ct)})
	}
	for name, vs := range r.Header {
		rest, ok := strings.CutPrefix(name, headerPrefix)
		if !ok {
			continue
		}
		rest = strings.ToLower(rest)
		if rest == "" {
			return m, problem(http.StatusBadRequest, typeBadRequest, "%s needs a name after it, like %sTenant", headerPrefix, headerPrefix)
		}
		if strings.HasPrefix(rest, millraceHeaders) && rest != filters.HeaderReplyTo && rest != filters.HeaderCorrelationID {
			return m, problem(http.StatusBadRequest, typeBadRequest,
				"%s%s: headers starting %s are millrace's own; a request may set only %s and %s", headerPrefix, rest,
				millraceHeaders, filters.HeaderReplyTo, filters.HeaderCorrelationID)
		}
		for _, v := range vs {
			m.headers = append(m.headers, sarama.RecordHeader{Key: []byte(rest), Value: []byte(v)})
		}
	}
	return m, nil
}

// replyTopicAllowed refuses a millrace-reply-to the pipeline would refuse
// (the job would run, but its reply never come): not in
// results.reply_topics, or on a pipeline without results.
func replyTopicAllowed(pl *pipeline.PipelinePlan, hs []sarama.RecordHeader) *Problem {
	for _, h := range hs {
		if string(h.Key) != filters.HeaderReplyTo {
			continue
		}
		topic := string(h.Value)
		switch {
		case pl.Results == nil:
			return problem(http.StatusBadRequest, typeBadRequest,
				"pipeline %s keeps no job results, so it sends no replies: add a results: block with reply_topics", pl.Name)
		case !slices.Contains(pl.Results.ReplyTopics, topic):
			return problem(http.StatusBadRequest, typeBadRequest,
				"reply topic %q is not one of pipeline %s's results.reply_topics %q: the job would run and its reply never come",
				topic, pl.Name, pl.Results.ReplyTopics)
		}
	}
	return nil
}

// readBody reads r's body, up to the API's max_body_bytes.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, *Problem) {
	limit := int64(s.api.MaxBodyBytes)
	if r.ContentLength > limit {
		return nil, problem(http.StatusRequestEntityTooLarge, typeTooLarge,
			"the body is %d bytes, over the limit of %d (api.max_body_bytes)", r.ContentLength, limit)
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		return nil, problem(http.StatusRequestEntityTooLarge, typeTooLarge, "the body is over the limit of %d bytes (api.max_body_bytes)", limit)
	case err != nil:
		return nil, problem(http.StatusBadRequest, typeBadRequest, "reading the body: %v", err)
	}
	return body, nil
}

// submission is one job to produce.
type submission struct {
	id    string
	value []byte
}

// produce sends each submission's record to pl's input and, with
// results, its accepted event to the events topic, together (one round
// trip: the fold does not need their order), and waits for the broker's
// verdict on each: the error of each submission's record, nil when the
// broker acknowledged it. The record alone decides: an accepted event
// that fails is logged (the job's status then starts with its first
// stage's event), and one whose record fails stays (a job that stays
// accepted, whose id nobody was given). It waits for the verdict however
// long the producer takes (its retries are bounded by the produce
// timeout, see [ProducerConfig]), so that a failure is final: the
// producer gave the record up, and it will not appear later.
func (s *Server) produce(pl *pipeline.PipelinePlan, subs []submission, m meta) []error {
	errs := make([]error, len(subs))
	var evErrs []error
	var wg sync.WaitGroup
	send := func(errs []error, i int, rec *sarama.ProducerMessage) {
		wg.Add(1)
		err := s.cfg.Publisher.SendAsync(rec.Topic, []*sarama.ProducerMessage{rec}, func(err error) {
			errs[i] = err
			wg.Done()
		})
		if err != nil {
			errs[i] = err
			wg.Done()
		}
	}
	now := s.cfg.Now()
	if pl.Results != nil {
		evErrs = make([]error, len(subs))
	}
	for i, sub := range subs {
		rec := inputRecord(pl, sub, m, now)
		if err := s.cfg.Publisher.CheckSize(rec.Topic, []*sarama.ProducerMessage{rec}); err != nil {
			errs[i] = err // before its accepted event: no job is left for a record refused
			continue
		}
		if pl.Results != nil {
			ev := jobs.AcceptedEvent(sub.id, now, m.headers).Marshal()
			send(evErrs, i, &sarama.ProducerMessage{Topic: pl.Results.EventsTopic, Key: sarama.StringEncoder(sub.id),
				Value: sarama.ByteEncoder(ev), Timestamp: now})
		}
		send(errs, i, rec)
	}
	wg.Wait()
	for i, err := range evErrs {
		if err != nil && errs[i] == nil {
			s.cfg.Log.Warn("a submitted job's accepted event was not written; its status starts with its first stage",
				"pipeline", pl.Name, "job", subs[i].id, "err", err)
		}
	}
	return errs
}

// inputRecord is the record of submission sub to pl's input, made at now.
func inputRecord(pl *pipeline.PipelinePlan, sub submission, m meta, now time.Time) *sarama.ProducerMessage {
	hs := make([]sarama.RecordHeader, 0, 1+len(m.headers))
	hs = append(hs, sarama.RecordHeader{Key: []byte(filters.HeaderJob), Value: []byte(sub.id)})
	hs = append(hs, m.headers...)
	rec := &sarama.ProducerMessage{Topic: pl.Input, Value: sarama.ByteEncoder(sub.value), Headers: hs, Timestamp: now}
	switch {
	case m.key != nil:
		rec.Key = sarama.ByteEncoder(m.key)
	case m.idempotency != "":
		// Keyed by the job id, so that every retry of the request goes
		// to one partition, in order: a dedup stage keeps its keys per
		// partition, and runs records of one key one after the other.
		rec.Key = sarama.StringEncoder(sub.id)
	}
	return rec
}

// produceProblem is the answer to a submission the broker did not take.
func produceProblem(pl *pipeline.PipelinePlan, err error) *Problem {
	var tooLarge *transport.RecordTooLargeError
	switch {
	case errors.As(err, &tooLarge) || errors.Is(err, sarama.ErrMessageSizeTooLarge):
		return problem(http.StatusRequestEntityTooLarge, typeTooLarge, "the record is too large for Kafka: %v", err)
	case transport.RecordFault(err):
		return problem(http.StatusBadRequest, typeBadRequest, "Kafka refused the record: %v", err)
	}
	p := problem(http.StatusServiceUnavailable, typeUnavailable,
		"Kafka did not confirm the job's record for pipeline %s, so no job id was given (Kafka may still have written it: "+
			"retry with the same Idempotency-Key to be sure of one job): %v", pl.Name, err)
	p.RetryAfter = retryAfterUnavailable
	return p
}
