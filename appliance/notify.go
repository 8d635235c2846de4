package appliance

import (
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
)

// Notifier is the System's line to the service manager.
type Notifier interface {
	// Notify sends state lines such as "READY=1\nSTATUS=ready".
	Notify(state string)
	// WatchdogInterval is WATCHDOG_USEC for this process, 0 when there is no watchdog.
	WatchdogInterval() time.Duration
}

// systemdNotifier speaks sd_notify over $NOTIFY_SOCKET; outside systemd it does nothing.
type systemdNotifier struct{}

func (systemdNotifier) Notify(state string) {
	_, _ = daemon.SdNotify(false, state) // best effort: systemd may not be there
}

func (systemdNotifier) WatchdogInterval() time.Duration {
	d, err := daemon.SdWatchdogEnabled(false)
	if err != nil {
		return 0
	}
	return d
}
