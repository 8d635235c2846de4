// Package gateway enforces Patchgate's egress policy with nftables, in one table of its
// own (inet patchgate) programmed over netlink: the appliance's own outbound traffic
// may go only to its configured upstreams and to addresses that allowed DNS answers
// returned, and the traffic it forwards for device segments only to the addresses that
// segment's answers returned, for their TTL. DNS and DoT from those segments may go to
// the appliance alone; everything else is rejected, counted per segment, and logged at
// a bounded rate with the device's inventory name.
package gateway
