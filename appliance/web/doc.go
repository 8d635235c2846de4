// Package web is the appliance's local status page and JSON API. The status page is one
// struct, Status, rendered as HTML (html/template, assets embedded) or as JSON by the
// Accept header, always into a buffer first so that a template error is a clean 500.
//
// The appliance package adds panels: a PanelSource returns a Panel whose Data (a
// service's own status struct) the template templates/panels/ID.html renders (and JSON
// shows as is). The web package defines the small read interfaces it needs; the
// appliance package hands it concrete values. No other package imports web: the
// services expose their state as data and only the wiring turns it into panels.
//
// Every time a page shows relative to now goes through one template func, rel
// ({{rel $.Now .ExpiresAt}}: "3 h ago", "in 7 days", "never"), built on
// github.com/dustin/go-humanize's relative-time table; exact instants use clock
// (UTC), often as the title of a rel.
package web
