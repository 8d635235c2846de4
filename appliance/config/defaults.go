package config

import (
	"time"

	"github.com/patchgate/patchgate/appliance/audit"
	"github.com/patchgate/patchgate/appliance/auth"
	"github.com/patchgate/patchgate/appliance/gateway"
	"github.com/patchgate/patchgate/appliance/inventory"
	"github.com/patchgate/patchgate/appliance/resolver"
	"github.com/patchgate/patchgate/appliance/rollout"
	"github.com/patchgate/patchgate/appliance/selfupdate"
	"github.com/patchgate/patchgate/cache"
	"github.com/patchgate/patchgate/conf"
	"github.com/patchgate/patchgate/tuf"
)

// Default returns the configuration used for every key a file leaves out: the root's
// own defaults here, each subsystem's from its DefaultSection. configs/patchgate.yaml
// documents them.
func Default() Config {
	return Config{
		Log:          Log{Level: "info"},
		State:        State{Dir: "/var/lib/patchgate"},
		Shutdown:     Shutdown{Timeout: conf.Duration(15 * time.Second)},
		Admin:        Listener{Listen: "127.0.0.1:9080"},
		Distribution: Listener{Listen: ":8080"},
		Auth:         auth.DefaultSection(),
		Audit:        audit.DefaultSection(),
		Resolver:     resolver.DefaultSection(),
		Gateway:      gateway.DefaultSection(),
		Bandwidth:    cache.DefaultBandwidth(),
		TUF:          tuf.DefaultSection(),
		Cache:        cache.DefaultSection(),
		Inventory:    inventory.DefaultSection(),
		Rollout:      rollout.DefaultSection(),
		SelfUpdate:   selfupdate.DefaultSection(),
	}
}
