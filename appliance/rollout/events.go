package rollout

import (
	"context"
	"database/sql"
	"time"
)

// Event is one thing that happened to the rollout model: a transition, an approval, a
// forced stage, a deployment's progress, a new ring or window. The engine keeps its own
// history of them (per rollout) and hands each to the EventSink.
type Event struct {
	Time  time.Time `json:"time"`
	Actor string    `json:"actor"` // a person, "agent:ID", "device:ASSET" or "system"
	// Action is dotted: rollout.submit, rollout.approve, rollout.reject, rollout.schedule,
	// rollout.start, rollout.pause, rollout.resume, rollout.halt, rollout.cancel,
	// rollout.complete, stage.advance, stage.force, deployment.<state>,
	// deployments.create, release.create, release.kev, ring.put, ring.delete,
	// window.create, window.delete, token.create, token.revoke, agent.enroll.
	Action       string            `json:"action"`
	Object       string            `json:"object"` // rollout/7, deployment/42, release/3, ring/pilot, window/2, agent/ID, token/ID
	RolloutID    int64             `json:"rollout_id,omitempty"`
	DeploymentID int64             `json:"deployment_id,omitempty"`
	Details      map[string]string `json:"details,omitempty"`
	// After is the digest of the object as the event leaves it, for the audit record
	// (exception requests carry one); it is not kept in the history.
	After string `json:"-"`
}

// EventSink records Events; the audit log implements it (through a small adapter).
//
// Apply must do fn and record ev atomically: run fn inside a transaction of the
// appliance's database (the store the engine was given), add the record, and commit only
// once the record is safely written; if fn or the recording fails, nothing is committed
// and the error is returned (the engine then reports the action as not done). fn may be
// nil (a record of something that already happened). Apply is called from many
// goroutines, with the engine's own lock held: it must not call back into the engine.
type EventSink interface {
	Apply(ctx context.Context, ev Event, fn func(*sql.Tx) error) error
}
