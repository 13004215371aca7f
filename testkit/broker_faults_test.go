package testkit_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/millrace/millrace/testkit"
	"github.com/millrace/millrace/transport"
)

// A stage process killed (kill -9) while it waits for its JoinGroup
// response is given partitions by the rebalance it joined, but never
// sends SyncGroup or a heartbeat: the broker must expire it after its
// session timeout (10 s) and hand its partitions to the members alive, as
// Kafka does. The chaos test (cmd/millrace) found the embedded broker
// keeping such a member for ever, so its partitions were never consumed
// again.
func TestBroker_a_member_killed_while_joining_is_expired(t *testing.T) {
	testkit.ForEachBackend(t, func(t *testing.T, b testkit.Backend) {
		// The member must die before the rebalance it joined completes;
		// that completes when the member alive next heartbeats (every
		// 3 s), which may come first: then try again.
		for try := 1; ; try++ {
			if deadJoiner(t, b) {
				return
			}
			if try == 5 {
				t.Fatal("5 times the rebalance completed before the joining member died; the test proves nothing")
			}
		}
	})
}

// deadJoiner runs the scenario once on a new group; it reports false when
// the rebalance completed before the member died (nothing shown).
func deadJoiner(t *testing.T, b testkit.Backend) bool {
	topic, group := "join-"+testkit.Unique(), "join-"+testkit.Unique()
	b.CreateTopic(t, topic, 4)
	alive := &claimsHandler{}
	g, err := sarama.NewConsumerGroup(b.Brokers, group, transport.NewSaramaConfig("alive"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			_ = g.Consume(ctx, []string{topic}, alive)
		}
	}()
	defer func() { cancel(); <-done; g.Close() }()
	testkit.Eventually(t, 30*time.Second, func() bool { s, _ := alive.last(); return len(s.parts) == 4 },
		"the first member never owned the 4 partitions")
	_, sessions := alive.last()

	// The member that dies: a JoinGroup on a connection cut while the
	// request waits for the rebalance. Through a proxy, as sarama's
	// Broker.Close waits for the response.
	coord, err := b.Client(t).Coordinator(group)
	if err != nil {
		t.Fatal(err)
	}
	proxy := newCutProxy(t, coord.Addr())
	defer proxy.cut()
	conn := sarama.NewBroker(proxy.addr())
	if err := conn.Open(transport.NewSaramaConfig("dying")); err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	join := func(member string) *sarama.JoinGroupRequest {
		r := &sarama.JoinGroupRequest{Version: 5, GroupId: group, MemberId: member, ProtocolType: "consumer",
			SessionTimeout: 10000, RebalanceTimeout: 60000}
		if err := r.AddGroupProtocolMetadata("range", &sarama.ConsumerGroupMemberMetadata{Topics: []string{topic}}); err != nil {
			t.Fatal(err)
		}
		return r
	}
	first, err := conn.JoinGroup(join(""))
	if err != nil || first.Err != sarama.ErrMemberIdRequired {
		t.Fatalf("first JoinGroup: %v, %v; want MEMBER_ID_REQUIRED", err, first.Err)
	}
	go func() { _, _ = conn.JoinGroup(join(first.MemberId)) }()
	time.Sleep(50 * time.Millisecond) // the request is on its way
	proxy.cut()
	died := time.Now()

	// The rebalance it joined gives it partitions.
	testkit.Eventually(t, 30*time.Second, func() bool { s, n := alive.last(); return n > sessions && len(s.parts) < 4 },
		"the dying member never took part in a rebalance; the test proves nothing")
	if s, _ := alive.last(); s.at.Before(died) {
		t.Logf("%s: the rebalance completed %s before the member died; again", b.Name, died.Sub(s.at))
		return false
	}
	// Then it must go.
	for {
		s, _ := alive.last()
		if len(s.parts) == 4 {
			break
		}
		if time.Since(died) > 40*time.Second {
			t.Fatalf("%s after the member died (session timeout 10s) the one alive still owns %v only; group %s",
				time.Since(died).Round(time.Second), s.parts, describeGroup(t, b, group))
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("%s: the dead member was expired and its partitions reassigned %s after it died",
		b.Name, time.Since(died).Round(100*time.Millisecond))
	return true
}

func describeGroup(t *testing.T, b testkit.Backend, group string) string {
	ds, err := b.Admin(t).DescribeConsumerGroups([]string{group})
	if err != nil || len(ds) != 1 {
		return fmt.Sprintf("describe: %v", err)
	}
	s := fmt.Sprintf("state %s:", ds[0].State)
	for id, m := range ds[0].Members {
		if a, _ := m.GetMemberAssignment(); a != nil {
			s += fmt.Sprintf(" %s owns %v;", id, a.Topics)
		}
	}
	return s
}

// claimsHandler records the partitions of each session a consumer group
// member gets, and when it got them.
type claimsHandler struct {
	mu       sync.Mutex
	sessions []claims
}

type claims struct {
	parts []int32
	at    time.Time
}

func (h *claimsHandler) Setup(s sarama.ConsumerGroupSession) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	c := claims{at: time.Now()}
	for _, parts := range s.Claims() {
		c.parts = append(c.parts, parts...)
	}
	h.sessions = append(h.sessions, c)
	return nil
}

func (*claimsHandler) Cleanup(sarama.ConsumerGroupSession) error { return nil }

func (*claimsHandler) ConsumeClaim(_ sarama.ConsumerGroupSession, c sarama.ConsumerGroupClaim) error {
	for range c.Messages() {
	}
	return nil
}

// last returns the latest session and how many there were.
func (h *claimsHandler) last() (claims, int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.sessions) == 0 {
		return claims{}, 0
	}
	return h.sessions[len(h.sessions)-1], len(h.sessions)
}

// cutProxy forwards TCP connections to a broker until cut, which closes
// them all at once, as the death of a process does.
type cutProxy struct {
	l     net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

func newCutProxy(t *testing.T, target string) *cutProxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{l: l}
	go func() {
		for {
			in, err := l.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", target)
			if err != nil {
				in.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, in, out)
			p.mu.Unlock()
			go func() { _, _ = io.Copy(out, in); out.Close() }()
			go func() { _, _ = io.Copy(in, out); in.Close() }()
		}
	}()
	return p
}

func (p *cutProxy) addr() string { return p.l.Addr().String() }

func (p *cutProxy) cut() {
	p.l.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
}
