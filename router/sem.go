package router

import (
	"context"
	"sync"
)

// slots bounds how many records a stage's filter runs at once. With more
// than one lane (priority topics), a freed slot goes to a waiting record of
// the lane picked by smooth weighted round robin among the lanes that have
// waiters: heavier lanes are preferred in proportion to their weight, and
// no lane with waiters is starved.
type slots struct {
	ch chan struct{} // single lane: a plain channel semaphore

	mu    sync.Mutex
	free  int
	lanes []*lane
	total int
}

type lane struct {
	weight  int
	current int
	waiters []chan struct{}
}

// newSlots returns n slots shared by lanes with the given weights.
func newSlots(n int, weights []int) *slots {
	if len(weights) <= 1 {
		return &slots{ch: make(chan struct{}, n)}
	}
	s := &slots{free: n}
	for _, w := range weights {
		s.lanes = append(s.lanes, &lane{weight: w})
		s.total += w
	}
	return s
}

// acquire takes a slot for a record of lane l, waiting while none is free.
func (s *slots) acquire(ctx context.Context, l int) error {
	if s.ch != nil {
		select {
		case s.ch <- struct{}{}: // a free slot: ctx.Done would allocate a channel
			return nil
		default:
		}
		select {
		case s.ch <- struct{}{}:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	s.mu.Lock()
	if s.free > 0 && !s.anyWaiting() {
		s.free--
		s.mu.Unlock()
		return nil
	}
	w := make(chan struct{})
	ln := s.lanes[l]
	ln.waiters = append(ln.waiters, w)
	s.mu.Unlock()
	select {
	case <-w:
		return nil
	case <-ctx.Done():
		s.mu.Lock()
		for i, x := range ln.waiters {
			if x == w {
				ln.waiters = append(ln.waiters[:i], ln.waiters[i+1:]...)
				s.mu.Unlock()
				return ctx.Err()
			}
		}
		s.mu.Unlock()
		// The slot was handed to us as we gave up: pass it on.
		s.release()
		return ctx.Err()
	}
}

func (s *slots) anyWaiting() bool {
	for _, l := range s.lanes {
		if len(l.waiters) > 0 {
			return true
		}
	}
	return false
}

// release frees a slot, handing it to the next waiter by weight.
func (s *slots) release() {
	if s.ch != nil {
		<-s.ch
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var best *lane
	total := 0
	for _, l := range s.lanes {
		if len(l.waiters) == 0 {
			continue
		}
		l.current += l.weight
		total += l.weight
		if best == nil || l.current > best.current {
			best = l
		}
	}
	if best == nil {
		s.free++
		return
	}
	best.current -= total
	w := best.waiters[0]
	best.waiters[0] = nil
	best.waiters = best.waiters[1:]
	close(w)
}
