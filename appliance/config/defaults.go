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
		Resolver: Resolver{
			Enabled:         true,
			Listen:          []string{":53"},
			Upstreams:       []ResolverUpstream{{Address: "9.9.9.9:53", Protocol: "udp"}, {Address: "149.112.112.112:53", Protocol: "udp"}},
			UpstreamTimeout: Duration(2 * time.Second),
			HealthInterval:  Duration(15 * time.Second),
			BlockPublicDoH:  true,
			ReloadInterval:  Duration(5 * time.Second),
			LocalTTL:        Duration(60 * time.Second),
			Cache: ResolverCache{Size: 20000, MinTTL: Duration(0), MaxTTL: Duration(24 * time.Hour),
				NegativeTTL: Duration(5 * time.Minute), Prefetch: true, PrefetchMinHits: 3},
			Limits: ResolverLimits{MaxConcurrent: 512, ClientRate: 100, ClientBurst: 200, UDPBufferSize: 1232,
				TCPIdleTimeout: Duration(10 * time.Second), TCPMaxQueries: 100, TCPMaxConnections: 256},
			QueryLog: ResolverQueryLog{Ring: 1000, Log: "blocked", LogRate: 10, EventWindow: Duration(time.Minute)},
		},
		Gateway: Gateway{Grace: Duration(30 * time.Second), MaxTimeout: Duration(24 * time.Hour), LogGroup: 1717, LogRate: 10,
			Ports: []string{"80", "443"}, StatsInterval: Duration(15 * time.Second), Egress: GatewayEgress{Refresh: Duration(time.Hour)}},
		Auth: Auth{SessionIdle: Duration(15 * time.Minute), SessionLifetime: Duration(12 * time.Hour), LockoutAfter: 5,
			LockoutBase: Duration(time.Minute), LockoutMax: Duration(time.Hour), BreakGlassMax: Duration(time.Hour),
			TokenLifetime: Duration(90 * 24 * time.Hour), TLS: AdminTLS{Mode: "self-signed"}},
		Audit:     Audit{CheckpointEvery: Duration(time.Hour)},
		Bandwidth: Bandwidth{Zone: "Local", DefaultPercent: 100},
		TUF:       TUF{Demo: TUFDemo{Name: "demo"}},
		Cache: Cache{Quota: 20 << 30, ScrubRate: 4 << 20, ScrubPause: Duration(time.Hour),
			StallTimeout: Duration(60 * time.Second)},
		Inventory: Inventory{FragileTag: "fragile", NewFor: Duration(7 * 24 * time.Hour),
			Passive: InventoryPassive{RepeatWindow: Duration(10 * time.Minute)},
			Scan: InventoryScan{Schedule: "30 2 * * *", HostRate: 40, GlobalRate: 1000, Timeout: Duration(2 * time.Second),
				MaxAddresses: 4096, Communities: []Secret{"public"}}},
		Rollout: Rollout{Zone: "UTC", Gate: "enforce", DefaultRing: "core", Tick: Duration(30 * time.Second),
			PollInterval: Duration(5 * time.Minute), Recheck: Duration(15 * time.Minute), DownloadTimeout: Duration(2 * time.Hour),
			Approvals: 1, EmergencyApprovals: 2, MaxAttempts: 3, RetryBackoff: Duration(10 * time.Minute), RetryBackoffMax: Duration(6 * time.Hour),
			SLA: RolloutSLA{Critical: Duration(72 * time.Hour), High: Duration(7 * 24 * time.Hour), Medium: Duration(30 * 24 * time.Hour),
				Low: Duration(90 * 24 * time.Hour)},
			Prefetch: RolloutPrefetch{OffPeak: "0 1 * * *", OffPeakDuration: Duration(4 * time.Hour), Lead: Duration(2 * time.Hour)},
			Rings: []RolloutRing{{Name: "pilot", Order: 0, Tags: []string{"pilot"}}, {Name: "core", Order: 1},
				{Name: "critical", Order: 2, Tags: []string{"critical"}}},
			Windows: []RolloutWindow{{Name: "nightly", Cron: "0 22 * * *", Duration: Duration(6 * time.Hour)}}},
		SelfUpdate: SelfUpdate{Prefix: "appliance/", CheckInterval: Duration(time.Hour), ESP: "/efi"},
	}
}
