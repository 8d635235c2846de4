// Package appliance wires Patchgate together. A System builds every service from one
// config.Config, runs them, tells systemd when the whole appliance is ready (READY=1),
// keeps its watchdog fed, reports health as STATUS= lines, and stops the services in
// reverse order within a bounded time.
//
// Only cmd/patchgate imports this package. Each subsystem's wiring lives in a file of its
// own (http.go, web.go, ...) as a build step that New calls in order.
package appliance
