package router

import (
	"context"
	"sync"
	"testing"
	"time"
)

func TestSlots_hand_freed_slots_to_lanes_by_weight_without_starving(t *testing.T) {
	s := newSlots(1, []int{8, 1})
	if err := s.acquire(context.Background(), 0); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var order []int
	var wg sync.WaitGroup
	for _, l := range []int{1, 0} { // the light lane queues first
		for range 90 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := s.acquire(context.Background(), l); err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				order = append(order, l)
				mu.Unlock()
				s.release()
			}()
		}
		waitFor(t, func() bool {
			s.mu.Lock()
			defer s.mu.Unlock()
			return len(s.lanes[l].waiters) == 90
		})
	}
	s.release()
	wg.Wait()
	heavy := 0
	for _, l := range order[:90] {
		if l == 0 {
			heavy++
		}
	}
	if heavy != 80 {
		t.Fatalf("of the first 90 slots the heavy lane got %d, want 80 (8:1)", heavy)
	}
	if len(order) != 180 {
		t.Fatalf("%d acquisitions, want 180", len(order))
	}
}

func TestSlots_a_cancelled_waiter_gives_up_its_place(t *testing.T) {
	s := newSlots(1, []int{1, 1})
	if err := s.acquire(context.Background(), 0); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error)
	go func() { errc <- s.acquire(ctx, 1) }()
	waitFor(t, func() bool { s.mu.Lock(); defer s.mu.Unlock(); return len(s.lanes[1].waiters) == 1 })
	cancel()
	if err := <-errc; err == nil {
		t.Fatal("cancelled acquire succeeded")
	}
	s.release()
	if err := s.acquire(context.Background(), 0); err != nil || s.free != 0 {
		t.Fatalf("slot not free again after the waiter left: %v free=%d", err, s.free)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(time.Millisecond)
	}
}
