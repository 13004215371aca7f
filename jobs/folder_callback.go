package jobs

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/IBM/sarama"
)

// The folder is its callback queue's store: each state change of a
// callback is a status record of its job, so that a restart finds the
// callbacks still pending (docs/jobs.md, "Callbacks").

// pending is the callback delivery of a status record whose callback is
// pending.
func (f *folder) pending(rec StatusRecord) Pending {
	body, _ := json.Marshal(rec.Status)
	cb := rec.Callback
	return Pending{DeliveryID: cb.Delivery, Job: rec.Status.Job, Body: body, URL: f.cfg.Pipeline.Results.Callback.URL,
		Attempts: cb.Attempts, NextAt: cb.NextAt, Deadline: cb.Deadline, LastError: cb.Error}
}

// Save records a failed attempt of p: still pending.
func (f *folder) Save(ctx context.Context, p Pending) error {
	return f.writeCallback(p, CallbackState{Delivery: p.DeliveryID, State: "pending", Attempts: p.Attempts, NextAt: p.NextAt,
		Deadline: p.Deadline, Error: p.LastError})
}

// Finish records that p was delivered or given up.
func (f *folder) Finish(ctx context.Context, p Pending, outcome CallbackOutcome, err error) error {
	st := CallbackState{Delivery: p.DeliveryID, State: "delivered", Attempts: p.Attempts, Deadline: p.Deadline}
	if outcome != CallbackDelivered {
		st.State = "failed"
		if err != nil {
			st.Error = err.Error()
		}
	}
	return f.writeCallback(p, st)
}

// writeCallback writes the status record of p's job with callback state
// cs — the record the folder knows for the job (its reply state kept),
// else the status p carries — and notes where it went: a pending callback
// holds the metadata offset of its partition back. The state of a
// delivery the job no longer has (it finished again since, with another
// outcome) is not written: it would replace the newer one.
func (f *folder) writeCallback(p Pending, cs CallbackState) error {
	r := f.cfg.Pipeline.Results
	part, err := f.partitionOf(r.StatusTopic, p.Job)
	if err != nil {
		return err
	}
	var rec StatusRecord
	f.mu.Lock()
	known, ok := StatusRecord{}, false
	if st := f.parts[part]; st != nil {
		var k knownStatus
		if k, ok = st.restored[p.Job]; ok {
			known = k.rec
		}
	}
	f.mu.Unlock()
	switch {
	case ok && known.Callback != nil && known.Callback.Delivery != p.DeliveryID:
		return nil
	case ok:
		rec = known
	default:
		if err := json.Unmarshal(p.Body, &rec.Status); err != nil {
			return fmt.Errorf("callback of job %s: its body is not a status: %w", p.Job, err)
		}
	}
	rec.Callback = &cs
	m := f.statusRecord(p.Job, rec)
	if err := f.cfg.Publisher.Send(m.Topic, []*sarama.ProducerMessage{m}); err != nil {
		return fmt.Errorf("record the callback state of job %s: %w", p.Job, err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if st := f.parts[m.Partition]; st != nil {
		st.advanceStatus(m.Offset + 1)
		st.remember(p.Job, rec, f.cfg.Clock.Now())
		if cs.State == "pending" {
			if _, ok := st.callbacks[p.Job]; !ok {
				st.callbacks[p.Job] = m.Offset
			}
		} else {
			delete(st.callbacks, p.Job)
		}
	}
	return nil
}
