package kfake_test

// millrace's tests of its patches to classic consumer groups (see
// README.md). They speak the Kafka protocol over raw connections, so a test
// decides exactly when a member's connection dies.

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/millrace/millrace/internal/kfake"
)

const (
	group = "g"
	topic = "t"
)

func newCluster(t *testing.T) *kfake.Cluster {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, topic), kfake.GroupMinSessionTimeout(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// member is one group member on its own connection, speaking the classic
// group protocol the way sarama and the Java client do.
type member struct {
	t                  *testing.T
	name               string
	conn               net.Conn
	corr               int32
	id                 string
	gen                int32
	session, rebalance time.Duration
	gone               bool // the coordinator answered UNKNOWN_MEMBER_ID
}

func newMember(t *testing.T, c *kfake.Cluster, name string, session, rebalance time.Duration) *member {
	t.Helper()
	conn, err := net.Dial("tcp", c.ListenAddrs()[0])
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	m := &member{t: t, name: name, conn: conn, session: session, rebalance: rebalance}
	// KIP-394: the first JoinGroup only hands out the member id.
	m.send(m.joinRequest())
	resp := m.recvJoin(5 * time.Second)
	if resp.ErrorCode != kerr.MemberIDRequired.Code {
		t.Fatalf("%s: first JoinGroup: %v, want MEMBER_ID_REQUIRED", name, kerr.ErrorForCode(resp.ErrorCode))
	}
	m.id = resp.MemberID
	return m
}

func (m *member) send(req kmsg.Request) {
	m.t.Helper()
	m.corr++
	buf := kmsg.NewRequestFormatter(kmsg.FormatterClientID(m.name)).AppendRequest(nil, req, m.corr)
	if _, err := m.conn.Write(buf); err != nil {
		m.t.Fatalf("%s: send %T: %v", m.name, req, err)
	}
}

// recv reads the response to the last request sent, waiting up to timeout.
func (m *member) recv(resp kmsg.Response, timeout time.Duration) error {
	if err := m.conn.SetReadDeadline(time.Now().Add(timeout)); err != nil {
		return err
	}
	var size [4]byte
	if _, err := io.ReadFull(m.conn, size[:]); err != nil {
		return err
	}
	body := make([]byte, binary.BigEndian.Uint32(size[:]))
	if _, err := io.ReadFull(m.conn, body); err != nil {
		return err
	}
	if corr := int32(binary.BigEndian.Uint32(body)); corr != m.corr {
		return fmt.Errorf("response for request %d, want %d", corr, m.corr)
	}
	return resp.ReadFrom(body[4:]) // versions below are not flexible: no header tags
}

func (m *member) joinRequest() *kmsg.JoinGroupRequest {
	req := kmsg.NewPtrJoinGroupRequest()
	req.Version = 5
	req.Group = group
	req.MemberID = m.id
	req.SessionTimeoutMillis = int32(m.session.Milliseconds())
	req.RebalanceTimeoutMillis = int32(m.rebalance.Milliseconds())
	req.ProtocolType = "consumer"
	meta := kmsg.NewConsumerMemberMetadata()
	meta.Topics = []string{topic}
	p := kmsg.NewJoinGroupRequestProtocol()
	p.Name = "range"
	p.Metadata = meta.AppendTo(nil)
	req.Protocols = append(req.Protocols, p)
	return req
}

func (m *member) recvJoin(timeout time.Duration) *kmsg.JoinGroupResponse {
	m.t.Helper()
	resp := kmsg.NewPtrJoinGroupResponse()
	resp.Version = 5
	if err := m.recv(resp, timeout); err != nil {
		m.t.Fatalf("%s: JoinGroup not answered within %s: %v", m.name, timeout, err)
	}
	return resp
}

// join joins (or rejoins) and waits for the join phase to end.
func (m *member) join(timeout time.Duration) *kmsg.JoinGroupResponse {
	m.t.Helper()
	m.send(m.joinRequest())
	resp := m.recvJoin(timeout)
	if resp.ErrorCode != 0 {
		m.t.Fatalf("%s: JoinGroup: %v", m.name, kerr.ErrorForCode(resp.ErrorCode))
	}
	m.gen = resp.Generation
	return resp
}

// sync sends SyncGroup; a leader passes the assignment of each member.
func (m *member) sync(assign map[string][]int32) []int32 {
	m.t.Helper()
	req := kmsg.NewPtrSyncGroupRequest()
	req.Version = 3
	req.Group = group
	req.Generation = m.gen
	req.MemberID = m.id
	for id, parts := range assign {
		a := kmsg.NewConsumerMemberAssignment()
		at := kmsg.NewConsumerMemberAssignmentTopic()
		at.Topic = topic
		at.Partitions = parts
		a.Topics = append(a.Topics, at)
		ga := kmsg.NewSyncGroupRequestGroupAssignment()
		ga.MemberID = id
		ga.MemberAssignment = a.AppendTo(nil)
		req.GroupAssignment = append(req.GroupAssignment, ga)
	}
	m.send(req)
	resp := kmsg.NewPtrSyncGroupResponse()
	resp.Version = 3
	if err := m.recv(resp, 5*time.Second); err != nil {
		m.t.Fatalf("%s: SyncGroup: %v", m.name, err)
	}
	if resp.ErrorCode != 0 {
		m.t.Fatalf("%s: SyncGroup: %v", m.name, kerr.ErrorForCode(resp.ErrorCode))
	}
	var a kmsg.ConsumerMemberAssignment
	if err := a.ReadFrom(resp.MemberAssignment); err != nil {
		m.t.Fatalf("%s: assignment: %v", m.name, err)
	}
	var parts []int32
	for _, at := range a.Topics {
		parts = append(parts, at.Partitions...)
	}
	slices.Sort(parts)
	return parts
}

// heartbeat sends one heartbeat and returns its error code.
func (m *member) heartbeat() int16 {
	m.t.Helper()
	req := kmsg.NewPtrHeartbeatRequest()
	req.Version = 3
	req.Group = group
	req.Generation = m.gen
	req.MemberID = m.id
	m.send(req)
	resp := kmsg.NewPtrHeartbeatResponse()
	resp.Version = 3
	if err := m.recv(resp, 5*time.Second); err != nil {
		m.t.Fatalf("%s: Heartbeat: %v", m.name, err)
	}
	return resp.ErrorCode
}

// heartbeatUntilRebalance heartbeats every 100ms until the coordinator
// answers REBALANCE_IN_PROGRESS, and fails the test after timeout.
func (m *member) heartbeatUntilRebalance(c *kfake.Cluster, timeout time.Duration, what string) {
	m.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		switch code := m.heartbeat(); code {
		case 0:
		case kerr.RebalanceInProgress.Code:
			return
		default:
			m.t.Fatalf("%s: Heartbeat: %v", m.name, kerr.ErrorForCode(code))
		}
		if time.Now().After(deadline) {
			m.t.Fatalf("%s within %s; %s", what, timeout, describe(m.t, c))
		}
		time.Sleep(100 * time.Millisecond) // the heartbeat interval
	}
}

// die closes the member's connection and returns once the broker has
// closed its end too. The broker marks the connection dead right after
// closing it, in the same goroutine, while any request that could end the
// join phase still has to pass through another connection and the cluster
// loop: so a response to this member then goes to a dead connection.
func (m *member) die() {
	m.t.Helper()
	if err := m.conn.(*net.TCPConn).CloseWrite(); err != nil {
		m.t.Fatal(err)
	}
	if err := m.conn.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		m.t.Fatal(err)
	}
	if n, err := m.conn.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		m.t.Fatalf("%s: the broker did not close the connection: %d bytes, %v", m.name, n, err)
	}
	m.conn.Close()
}

func memberIDs(resp *kmsg.JoinGroupResponse) []string {
	var ids []string
	for _, m := range resp.Members {
		ids = append(ids, m.MemberID)
	}
	slices.Sort(ids)
	return ids
}

// describe says what state the group is in and who its members are.
func describe(t *testing.T, c *kfake.Cluster) string {
	t.Helper()
	conn, err := net.Dial("tcp", c.ListenAddrs()[0])
	if err != nil {
		return err.Error()
	}
	defer conn.Close()
	m := &member{t: t, name: "describe", conn: conn}
	req := kmsg.NewPtrDescribeGroupsRequest()
	req.Version = 4
	req.Groups = []string{group}
	m.send(req)
	resp := kmsg.NewPtrDescribeGroupsResponse()
	resp.Version = 4
	if err := m.recv(resp, 5*time.Second); err != nil || len(resp.Groups) != 1 {
		return fmt.Sprintf("describe group: %v", err)
	}
	g := resp.Groups[0]
	var ids []string
	for _, m := range g.Members {
		ids = append(ids, m.MemberID)
	}
	return fmt.Sprintf("group %s is %s with members %v", group, g.State, ids)
}

// A member whose process died while its JoinGroup was parked gets its join
// response on a dead connection. Kafka starts every member's session timer
// when the join phase ends, delivered or not, so the member is evicted one
// session timeout later and the live member gets the whole assignment.
func TestGroup_a_member_dead_while_its_join_is_parked_is_evicted_after_its_session_timeout(t *testing.T) {
	c := newCluster(t)
	const session, rebalance = time.Second, 30 * time.Second

	a := newMember(t, c, "a", session, rebalance)
	a.join(5 * time.Second)
	a.sync(map[string][]int32{a.id: {0, 1}})

	// b joins: the group waits for a to rejoin, b's JoinGroup is parked
	// when b's process dies.
	b := newMember(t, c, "b", session, rebalance)
	b.send(b.joinRequest())
	a.heartbeatUntilRebalance(c, 5*time.Second, "b's join did not start a rebalance")
	b.die()

	// a rejoins: the join phase ends, b's response goes nowhere.
	resp := a.join(5 * time.Second)
	if got, want := memberIDs(resp), []string{a.id, b.id}; !slices.Equal(got, want) || resp.LeaderID != a.id {
		t.Fatalf("join phase ended with members %v, leader %s; want %v, leader %s", got, resp.LeaderID, want, a.id)
	}
	a.sync(map[string][]int32{a.id: {0}, b.id: {1}})
	joined := time.Now()

	// b never heartbeats: it must be gone one session timeout later.
	a.heartbeatUntilRebalance(c, session+2*time.Second, "the dead member b was not evicted")
	t.Logf("b evicted %s after the join phase ended (session timeout %s)", time.Since(joined).Round(time.Millisecond), session)
	resp = a.join(5 * time.Second)
	if got := memberIDs(resp); !slices.Equal(got, []string{a.id}) {
		t.Fatalf("after the eviction the group has members %v, want only a (%s)", got, a.id)
	}
	if parts := a.sync(map[string][]int32{a.id: {0, 1}}); !slices.Equal(parts, []int32{0, 1}) {
		t.Fatalf("a owns partitions %v, want [0 1]", parts)
	}
}

// stableWithTwo returns members a (the leader) and c in a Stable group, a
// owning partition 0 and c partition 1.
func stableWithTwo(t *testing.T, cl *kfake.Cluster, session, rebalance time.Duration) (a, c *member) {
	t.Helper()
	a = newMember(t, cl, "a", session, rebalance)
	a.join(5 * time.Second)
	a.sync(map[string][]int32{a.id: {0, 1}})
	c = newMember(t, cl, "c", session, rebalance)
	c.send(c.joinRequest())
	a.heartbeatUntilRebalance(cl, 5*time.Second, "c's join did not start a rebalance")
	a.join(5 * time.Second)
	c.gen = c.recvJoin(5 * time.Second).Generation
	a.sync(map[string][]int32{a.id: {0}, c.id: {1}})
	c.sync(nil)
	return a, c
}

// heartbeatFor heartbeats every 100ms for d (a live member that is slow to
// rejoin: it heartbeats but does not send JoinGroup). Once the coordinator
// no longer knows the member it only waits.
func (m *member) heartbeatFor(d time.Duration) {
	m.t.Helper()
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		if m.gone {
			continue
		}
		switch code := m.heartbeat(); code {
		case 0, kerr.RebalanceInProgress.Code:
		case kerr.UnknownMemberID.Code:
			m.gone = true
		default:
			m.t.Fatalf("%s: Heartbeat: %v", m.name, kerr.ErrorForCode(code))
		}
	}
}

// A member waiting in JoinGroup is not expired by its session timeout
// while the group waits for the others (Kafka: a member awaiting join or
// sync satisfies its heartbeats, ClassicGroupMember.hasSatisfiedHeartbeat).
// Upstream removed it and never answered its JoinGroup, so the client
// waited out its request timeout.
func TestGroup_a_member_waiting_in_JoinGroup_outlives_its_session_timeout(t *testing.T) {
	cl := newCluster(t)
	const session, rebalance = time.Second, 30 * time.Second
	a, c := stableWithTwo(t, cl, session, rebalance)

	// a rejoins and waits for c, which takes 2.5 session timeouts to follow.
	a.send(a.joinRequest())
	c.heartbeatFor(5 * session / 2)
	c.join(5 * time.Second)
	resp := a.recvJoin(5 * time.Second)
	if resp.ErrorCode != 0 {
		t.Fatalf("a's JoinGroup: %v; %s", kerr.ErrorForCode(resp.ErrorCode), describe(t, cl))
	}
	if got, want := memberIDs(resp), []string{a.id, c.id}; !slices.Equal(got, want) {
		t.Fatalf("join phase ended with members %v, want %v", got, want)
	}
}

// Members that join while the group is preparing a rebalance do not move
// its deadline: Kafka schedules the join phase's end once, when the
// rebalance starts (prepareRebalance), and a join during
// PreparingRebalance only completes the phase early if everybody is in.
// Upstream restarted the rebalance timeout at every join, so clients that
// kept joining (each sarama give-up rejoins) kept a member that never
// rejoined in the group for good.
func TestGroup_joins_during_a_rebalance_do_not_extend_its_deadline(t *testing.T) {
	cl := newCluster(t)
	const session, rebalance = 10 * time.Second, 2 * time.Second
	a, c := stableWithTwo(t, cl, session, rebalance)

	// a rejoins; c heartbeats but never rejoins, so the join phase ends
	// at the rebalance timeout, while new members keep joining until well
	// after it.
	a.send(a.joinRequest())
	started := time.Now()
	done := make(chan time.Duration, 1)
	go func() {
		resp := kmsg.NewPtrJoinGroupResponse()
		resp.Version = 5
		if err := a.recv(resp, 10*time.Second); err != nil || resp.ErrorCode != 0 {
			done <- -1
			return
		}
		done <- time.Since(started)
	}()
	for i := range 8 {
		c.heartbeatFor(400 * time.Millisecond)
		n := newMember(t, cl, fmt.Sprintf("n%d", i), session, rebalance)
		n.send(n.joinRequest())
	}
	took := <-done
	if took < 0 {
		t.Fatalf("a's JoinGroup failed; %s", describe(t, cl))
	}
	if limit := rebalance + time.Second; took > limit {
		t.Fatalf("the join phase ended %s after it started, want within the rebalance timeout %s (+1s)", took.Round(time.Millisecond), rebalance)
	}
	t.Logf("the join phase ended %s after it started (rebalance timeout %s)", took.Round(time.Millisecond), rebalance)
}
