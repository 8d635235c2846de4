// Package segment is the network segments the appliance serves: their config section
// (segments: in patchgate.yaml, each segment's interface, VLAN, own addresses, client
// subnets and services) with its validation, and the Table built once from it that
// every subsystem asks which segment a client address is in. The resolver's client
// groups, the shaper's budgets, the listeners' source filters, the rollout windows and
// rings, the inventory and the gateway's egress policy all refer to segments by name
// through one Table.
package segment
