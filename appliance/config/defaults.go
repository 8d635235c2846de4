package config

import "time"

// Default returns the configuration used for every key a file leaves out. It is the
// one place where defaults live; configs/patchgate.yaml documents them.
func Default() Config {
	return Config{
		Log:          Log{Level: "info"},
		State:        State{Dir: "/var/lib/patchgate"},
		Shutdown:     Shutdown{Timeout: Duration(15 * time.Second)},
		Admin:        Listener{Listen: "127.0.0.1:9080"},
		Distribution: Listener{Listen: ":8080"},
	}
}
