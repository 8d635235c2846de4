// Package firstboot prepares a freshly installed Patchgate appliance: the admin TLS
// certificate and the one-time setup token (Ensure), the console banner that shows them
// with the appliance's addresses (Banner), and the static network settings a site can
// put on the ESP in patchgate-firstboot.yaml when its management segment has no DHCP
// (ParseConfig, Config.Network).
//
// The image runs these through `patchgate image firstboot|banner|netconfig` from its
// own systemd units (image/units). Nothing here is used by the daemon itself.
package firstboot
