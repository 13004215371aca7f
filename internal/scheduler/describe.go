package scheduler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/IBM/sarama"
	"github.com/google/uuid"

	"github.com/millrace/millrace/pipeline"
	"github.com/millrace/millrace/transport"
)

// Info is one schedule as `millrace schedules ls` shows it.
type Info struct {
	// ID is "pipeline/name".
	ID       string `json:"id"`
	Pipeline string `json:"pipeline"`
	Name     string `json:"name"`
	// Timing says when it fires ("cron 0 2 * * * (Europe/Berlin)",
	// "every 15m").
	Timing  string `json:"timing"`
	Enabled bool   `json:"enabled"`
	// Next are its next fire times after the time asked at, scheduled
	// times in its time zone (jitter not added); none when disabled.
	Next []time.Time `json:"next,omitempty"`
	// Last is its last tick as the schedule topic records it; nil when it
	// never fired.
	Last *State `json:"last,omitempty"`
}

// Leader is the member of the scheduler group that leads.
type Leader struct {
	// Process is the member's process, as it names itself ("host/pid").
	Process string `json:"process"`
	// ClientID and Host are the member's client id and address as the
	// group coordinator sees them.
	ClientID string `json:"client_id"`
	Host     string `json:"host"`
}

// Listing is what [Describe] found.
type Listing struct {
	Schedules []Info `json:"schedules"`
	// Leader is nil when no process leads (none runs, or the group is
	// rebalancing).
	Leader *Leader `json:"leader"`
	// Members counts the processes in the scheduler group.
	Members int `json:"members"`
	// NotFired are the enabled schedules of this file that the last
	// leader's file does not have: another pipelines file's processes lead
	// the group, so they do not fire (give each file its own scheduler:
	// {group, topic}).
	NotFired []string `json:"not_fired,omitempty"`
}

// Describe lists the plan's schedules: the next n fire times of each
// after now, its last tick from the schedule topic (which may not exist
// yet: then none has fired), and the process that leads the scheduler
// group. Errors are Kafka's.
func Describe(ctx context.Context, client sarama.Client, plan *pipeline.Plan, now time.Time, n int) (Listing, error) {
	var l Listing
	states := map[string]State{}
	topics, err := client.Topics()
	if err != nil {
		return l, err
	}
	if slices.Contains(topics, plan.Scheduler.Topic) {
		if states, err = ReadStates(ctx, client, plan.Scheduler.Topic); err != nil {
			return l, err
		}
	}
	for _, sp := range plan.Schedules() {
		in := Info{ID: sp.ID(), Pipeline: sp.Pipeline, Name: sp.Name, Timing: sp.Timing.String(), Enabled: sp.Enabled}
		if sp.Enabled {
			for t := now; len(in.Next) < n; {
				if t = sp.Timing.Next(t); t.IsZero() {
					break
				}
				in.Next = append(in.Next, t.In(sp.Location))
			}
		}
		if st, ok := states[sp.ID()]; ok {
			in.Last = &st
		}
		l.Schedules = append(l.Schedules, in)
	}
	if ld, ok := states[leaderKey]; ok && ld.State == StateLeader {
		for _, sp := range plan.EnabledSchedules() {
			if !slices.Contains(ld.Schedules, sp.ID()) {
				l.NotFired = append(l.NotFired, sp.ID())
			}
		}
	}
	l.Leader, l.Members, err = leader(client, plan.Scheduler)
	return l, err
}

// leader finds the member of the scheduler group assigned partition 0 of
// its topic, and counts the members.
func leader(client sarama.Client, sched pipeline.SchedulerPlan) (*Leader, int, error) {
	admin, err := sarama.NewClusterAdminFromClient(client)
	if err != nil {
		return nil, 0, err
	}
	// Not closed: closing it would close client, the caller's.
	groups, err := admin.DescribeConsumerGroups([]string{sched.Group})
	if err != nil {
		return nil, 0, fmt.Errorf("describe group %s: %w", sched.Group, err)
	}
	if len(groups) == 0 {
		return nil, 0, nil
	}
	g := groups[0]
	if g.Err != sarama.ErrNoError && g.Err != sarama.ErrGroupIDNotFound {
		return nil, 0, fmt.Errorf("describe group %s: %w", sched.Group, g.Err)
	}
	for _, m := range g.Members {
		a, err := m.GetMemberAssignment()
		if err != nil || a == nil || !slices.Contains(a.Topics[sched.Topic], 0) {
			continue
		}
		ld := &Leader{ClientID: m.ClientId, Host: m.ClientHost}
		if i := strings.LastIndex(m.ClientId, processMark); i >= 0 {
			ld.Process = m.ClientId[i+len(processMark):]
		}
		return ld, len(g.Members), nil
	}
	return nil, len(g.Members), nil
}

// Trigger fires schedule sp now, on demand (`millrace schedules trigger`):
// a record as a tick at now would make, with a fresh (random) job id,
// sent whoever leads and whatever the schedule's overlap; the schedule
// topic is not touched, so the ticks go on as they would. It returns the
// job id once the broker acknowledged the record. Errors are the
// programs' and Kafka's.
func Trigger(client sarama.Client, pub *transport.Publisher, log *slog.Logger, plan *pipeline.Plan, sp *pipeline.SchedulePlan,
	now time.Time) (string, error) {
	pp, err := plan.Pipeline(sp.Pipeline)
	if err != nil {
		return "", err
	}
	parts, err := client.Partitions(pp.Input)
	if errors.Is(err, sarama.ErrUnknownTopicOrPartition) {
		return "", fmt.Errorf("topic %s, the input of pipeline %s, does not exist yet: 'millrace run' creates it", pp.Input, pp.Name)
	}
	if err != nil {
		return "", fmt.Errorf("partitions of %s: %w", pp.Input, err)
	}
	id := uuid.NewString()
	rec, err := Record(sp, pp.Input, int32(len(parts)), id, now)
	if err != nil {
		return "", fmt.Errorf("schedule %s: %w", sp.ID(), err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := send(pub, log, pp, rec, id); err != nil {
		return "", fmt.Errorf("schedule %s: send the record to %s: %w", sp.ID(), pp.Input, err)
	}
	return id, nil
}
