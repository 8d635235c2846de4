package inventory

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	newDevices   prometheus.Counter
	firmware     prometheus.Counter
	observations prometheus.Counter
	assets       *prometheus.GaugeVec
	sightings    prometheus.Gauge
	eventErrors  prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		newDevices: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "patchgate_inventory_new_devices_total",
			Help: "Assets created because a device was seen for the first time.",
		}),
		firmware: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "patchgate_inventory_firmware_changes_total",
			Help: "Observed firmware changes of known assets.",
		}),
		observations: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "patchgate_inventory_observations_total",
			Help: "Observations merged into the inventory.",
		}),
		assets: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "patchgate_inventory_assets",
			Help: "Assets in the inventory by device type.",
		}, []string{"type"}),
		sightings: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "patchgate_inventory_sightings",
			Help: "Devices seen only by a randomised MAC (not assets until identified).",
		}),
		eventErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "patchgate_inventory_event_errors_total",
			Help: "Inventory events the event sink (audit) failed to record.",
		}),
	}
	for _, c := range []prometheus.Collector{m.newDevices, m.firmware, m.observations, m.assets, m.sightings, m.eventErrors} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
