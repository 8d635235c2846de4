package appliance

import (
	"context"

	"github.com/patchgate/patchgate/appliance/fleet"
)

// buildFleetChildren is the parent's view of its child appliances (downstream agents):
// with rollout.gate enforce the serving gate identifies each child, so the bytes sent
// to it are counted (patchgate_fleet_child_served_bytes_total{child}) and the status
// page lists each child with its last check-in, bytes, share and health. With the gate
// open children fetch like any client and are not told apart.
func (s *System) buildFleetChildren(context.Context) error {
	sg, ok := s.updatesGate()
	if !ok || s.rollout == nil {
		return nil
	}
	c, err := fleet.NewChildren(fleet.ChildrenOptions{Agents: s.rollout.Agents, Clock: s.clock, Registerer: s.registry})
	if err != nil {
		return err
	}
	sg.children = c
	s.updates.handler.Gate = sg
	s.AddPanel(panel{"children", "Child appliances", func(ctx context.Context) any { return c.Status(ctx) }})
	return nil
}

// updatesGate is the cache's serving gate when rollout.gate is enforce.
func (s *System) updatesGate() (servingGate, bool) {
	if s.updates == nil {
		return servingGate{}, false
	}
	sg, ok := s.updates.handler.Gate.(servingGate)
	return sg, ok
}
