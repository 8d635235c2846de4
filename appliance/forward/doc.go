// Package forward sends the audit trail to the site's SIEM: every record, in order, at
// least once, as RFC 5424 syslog over TLS (RFC 5425 octet-counted framing) or as JSON
// over HTTPS. A Forwarder reads the trail by sequence number from a persisted cursor in
// its own goroutine, so the daemon never waits on the SIEM; what is not yet sent is the
// backlog, shown in Status and counted in a gauge.
package forward
