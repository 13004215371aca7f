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
// cs, and notes where it went: a pending callback holds the metadata
// offset of its partition back.
func (f *folder) writeCallback(p Pending, cs CallbackState) error {
	var s Status
	if err := json.Unmarshal(p.Body, &s); err != nil {
		return fmt.Errorf("callback of job %s: its body is not a status: %w", p.Job, err)
	}
	m := f.statusRecord(p.Job, StatusRecord{Status: s, Callback: &cs})
	if err := f.cfg.Publisher.Send(m.Topic, []*sarama.ProducerMessage{m}); err != nil {
		return fmt.Errorf("record the callback state of job %s: %w", p.Job, err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if st := f.parts[m.Partition]; st != nil {
		st.statusNext = max(st.statusNext, m.Offset+1)
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
