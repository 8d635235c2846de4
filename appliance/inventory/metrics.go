package inventory

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/patchgate/patchgate/metric"
)

type metrics struct {
	newDevices   prometheus.Counter
	firmware     prometheus.Counter
	observations prometheus.Counter
	assets       *prometheus.GaugeVec
	sightings    prometheus.Gauge
	eventErrors  prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	s := metric.New(reg, "inventory")
	m := &metrics{
		newDevices:   s.Counter("new_devices_total", "Assets created because a device was seen for the first time."),
		firmware:     s.Counter("firmware_changes_total", "Observed firmware changes of known assets."),
		observations: s.Counter("observations_total", "Observations merged into the inventory."),
		assets:       s.GaugeVec("assets", "Assets in the inventory by device type.", "type"),
		sightings:    s.Gauge("sightings", "Devices seen only by a randomised MAC (not assets until identified)."),
		eventErrors:  s.Counter("event_errors_total", "Inventory events the event sink (audit) failed to record."),
	}
	if err := s.Err(); err != nil {
		return nil, err
	}
	return m, nil
}
