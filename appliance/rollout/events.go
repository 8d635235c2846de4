package rollout

import (
	"context"
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
}

// EventSink receives every Event (the audit log implements it).
//
// Record is called after the engine has checked an action and before it commits it;
// when Record returns an error the action is refused and not done. Should the commit
// then fail (the disk is full), a second event with Action + ".failed" follows. Record
// must not write to the store's database inside the engine's transaction (there is
// none open when it is called). It is called from many goroutines.
type EventSink interface {
	Record(ctx context.Context, ev Event) error
}
