package fleet

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/patchgate/patchgate/appliance/rollout"
	"github.com/patchgate/patchgate/clock"
	"github.com/patchgate/patchgate/metric"
)

// DefaultOverdue is how long a child may go without checking in before the parent
// shows it overdue: three default check_every intervals.
const DefaultOverdue = 15 * time.Minute

// ChildrenOptions are Children's collaborators.
type ChildrenOptions struct {
	// Agents lists the parent's enrolled agents (the rollout engine's); the downstream
	// ones are its children.
	Agents func(context.Context) ([]*rollout.Agent, error)
	Clock  clock.Clock
	// Registerer takes patchgate_fleet_child_served_bytes_total (nil: nowhere).
	Registerer prometheus.Registerer
	// Overdue is how long without a check-in makes a child overdue (0: DefaultOverdue).
	Overdue time.Duration
}

// Children is the parent's side of its children: the target bytes it sent each
// (counted by the serving gate's callback, so only authenticated children count) and
// their state for the status page. Safe for concurrent use.
type Children struct {
	opts   ChildrenOptions
	served *prometheus.CounterVec

	mu    sync.Mutex
	names map[string]string // agent id -> the child label (its site name)
	bytes map[string]int64  // by agent id, since start
	last  map[string]time.Time
}

// NewChildren builds the parent's view of its children.
func NewChildren(opts ChildrenOptions) (*Children, error) {
	if opts.Agents == nil {
		return nil, errors.New("fleet: children: the agent list is required")
	}
	if opts.Clock == nil {
		opts.Clock = clock.Real{}
	}
	if opts.Overdue <= 0 {
		opts.Overdue = DefaultOverdue
	}
	ms := metric.New(opts.Registerer, "fleet")
	c := &Children{opts: opts, names: map[string]string{}, bytes: map[string]int64{}, last: map[string]time.Time{},
		served: ms.CounterVec("child_served_bytes_total", "Target bytes this parent sent each child appliance (label child: its site name, one series per enrolled child).", "child")}
	if err := ms.Err(); err != nil {
		return nil, err
	}
	return c, nil
}

// Served counts n bytes of a target sent to the child enrolled as agent id (the gate
// authenticated it). The metric's label is the child's site name, looked up once per
// id among the enrolled agents, so the series are bounded by the enrolled children.
func (c *Children) Served(ctx context.Context, id string, n int64) {
	c.mu.Lock()
	name, ok := c.names[id]
	c.mu.Unlock()
	if !ok {
		name = id
		if ags, err := c.opts.Agents(ctx); err == nil {
			for _, ag := range ags {
				if ag.ID == id && ag.Hostname != "" {
					name = ag.Hostname
				}
			}
		}
	}
	c.mu.Lock()
	c.names[id] = name
	c.bytes[id] += n
	c.last[id] = c.opts.Clock.Now()
	c.mu.Unlock()
	c.served.WithLabelValues(name).Add(float64(n))
}

// ChildStatus is one child as the parent sees it.
type ChildStatus struct {
	ID         string    `json:"id"`
	Name       string    `json:"name"` // its site name
	Version    string    `json:"version,omitempty"`
	Addr       string    `json:"addr,omitempty"`
	EnrolledAt time.Time `json:"enrolled_at"`
	LastSeen   time.Time `json:"last_seen,omitzero"` // last check-in
	LastServed time.Time `json:"last_served,omitzero"`
	Bytes      int64     `json:"bytes"`         // target bytes sent since this parent started
	Share      int       `json:"share_percent"` // of the bytes sent to all children
	// Health is ok, overdue (no check-in for ChildrenOptions.Overdue), never checked
	// in, or revoked.
	Health string `json:"health"`
}

// ChildrenStatus is every enrolled child, by name.
type ChildrenStatus struct {
	Children []ChildStatus `json:"children"`
	Bytes    int64         `json:"bytes"`
	Overdue  time.Duration `json:"overdue_after_ns"`
	Error    string        `json:"error,omitempty"`
}

// Status lists the children (downstream agents, revoked ones too) with what was sent
// to each.
func (c *Children) Status(ctx context.Context) ChildrenStatus {
	st := ChildrenStatus{Overdue: c.opts.Overdue}
	ags, err := c.opts.Agents(ctx)
	if err != nil {
		st.Error = err.Error()
		return st
	}
	now := c.opts.Clock.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, n := range c.bytes {
		st.Bytes += n
	}
	for _, ag := range ags {
		if !ag.Downstream() {
			continue
		}
		cs := ChildStatus{ID: ag.ID, Name: ag.Hostname, Version: ag.Facts.AgentVersion, EnrolledAt: ag.EnrolledAt,
			LastSeen: ag.LastSeen, LastServed: c.last[ag.ID], Bytes: c.bytes[ag.ID], Health: "ok"}
		if ag.LastAddr.IsValid() {
			cs.Addr = ag.LastAddr.String()
		}
		if st.Bytes > 0 {
			cs.Share = int(100 * cs.Bytes / st.Bytes)
		}
		switch {
		case !ag.RevokedAt.IsZero():
			cs.Health = "revoked"
		case ag.LastSeen.IsZero():
			cs.Health = "never checked in"
		case now.Sub(ag.LastSeen) > c.opts.Overdue:
			cs.Health = "overdue"
		}
		st.Children = append(st.Children, cs)
	}
	slices.SortFunc(st.Children, func(a, b ChildStatus) int { return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.ID, b.ID)) })
	return st
}
