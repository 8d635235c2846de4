package rollout

import (
	"strconv"
	"testing"
)

// Every GET of one object answers 404 for an id that names nothing, never 200 with an
// empty list or null (issue 14); the same routes answer 200 for an object that exists.
func TestAdminGetMissingIs404(t *testing.T) {
	v := newEnv(t)
	_, admin := v.servers(t, LoopbackActor)
	dora := client{t, admin.URL, map[string]string{ActorHeader: "dora"}}
	rel := v.release(t, Release{Name: "ws-agent", Version: "1.0", Repo: "demo", Targets: []string{"a.bin"}})
	ro := v.scheduled(t, pilotCore(rel.ID))
	tests := []struct {
		name, path string
		want       int
	}{
		{"release", "/api/v1/releases/" + strconv.FormatInt(rel.ID, 10), 200},
		{"missing release", "/api/v1/releases/999", 404},
		{"rollout", "/api/v1/rollouts/" + strconv.FormatInt(ro.ID, 10), 200},
		{"missing rollout", "/api/v1/rollouts/999", 404},
		{"rollout events", "/api/v1/rollouts/" + strconv.FormatInt(ro.ID, 10) + "/events", 200},
		{"events of a missing rollout", "/api/v1/rollouts/999/events", 404},
		{"missing deployment", "/api/v1/deployments/999", 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if code, raw := dora.do("GET", tt.path, nil, nil); code != tt.want {
				t.Errorf("GET %s = %d %s, want %d", tt.path, code, raw, tt.want)
			}
		})
	}
}
