package web

import (
	"context"
	"time"

	"github.com/patchgate/patchgate/appliance/logring"
	"github.com/patchgate/patchgate/health"
)

// Build describes the running binary.
type Build struct {
	Version string `json:"version"`
	Commit  string `json:"commit"`
	Date    string `json:"date"`
	Go      string `json:"go"`
}

// Status is everything the status page shows.
type Status struct {
	Build    Build          `json:"build"`
	Hostname string         `json:"hostname"`
	Now      time.Time      `json:"now"`
	Started  time.Time      `json:"started"`
	Uptime   Duration       `json:"uptime"`
	Ready    bool           `json:"ready"`
	Services []Service      `json:"services"`
	Panels   []Panel        `json:"panels"`
	Logs     []logring.Line `json:"logs"`
}

// Service is one service's line on the page.
type Service struct {
	Name   string           `json:"name"`
	Ready  bool             `json:"ready"`
	Health []health.Problem `json:"health"`
}

// Panel is a subsystem's box on the page. ID names its template, panels/ID.html.
type Panel struct {
	ID    string `json:"id"`
	Title string `json:"title"`
	Data  any    `json:"data"`
}

// PanelSource gives a panel's current content. Implementations must be safe for
// concurrent use and quick: the page is rendered on every request.
type PanelSource interface {
	Panel(ctx context.Context) Panel
}

// StatusSource gives the page's whole content.
type StatusSource interface {
	Status(ctx context.Context) Status
}

// Duration prints as "3h4m5s" rounded to the second, in JSON as seconds.
type Duration time.Duration

func (d Duration) String() string { return time.Duration(d).Round(time.Second).String() }

// MarshalJSON writes whole seconds.
func (d Duration) MarshalJSON() ([]byte, error) {
	return []byte(itoa(int64(time.Duration(d) / time.Second))), nil
}
