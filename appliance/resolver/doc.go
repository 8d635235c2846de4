// Package resolver is Patchgate's allowlisting DNS server for the managed segments.
//
// A query goes: client address → segment (REFUSED when in none) → rate limit →
// policy (the canary use-application-dns.net, rewrites to the appliance, block lists,
// allowlists) → an answer made here (rewritten or blocked), or an answer from the cache
// or the upstream resolvers, checked again along its CNAME chain → query log, metrics and
// the hooks (answer sink, blocked-query events). See README.md for the configuration and
// the metrics.
package resolver
