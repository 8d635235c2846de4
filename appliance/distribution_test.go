package appliance

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestDistributionDemo starts the System on the dev config: the demo repository is
// published into the state directory, served as an upstream on the distribution
// listener, mirrored, and its targets come back verified through /repos/demo/.
func TestDistributionDemo(t *testing.T) {
	sys, _, _ := startSystem(t)
	base := "http://" + sys.DistributionAddr()
	var body string
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(base + "/repos/demo/targets/hello.txt")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 {
				body = string(b)
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET /repos/demo/targets/hello.txt never succeeded (last: %v)", err)
		}
		time.Sleep(50 * time.Millisecond) // the mirror's first refresh runs as Run starts
	}
	if !strings.Contains(body, "Hello from Patchgate") {
		t.Errorf("hello.txt = %q", body)
	}
	for _, p := range []string{"/repos/demo/metadata/timestamp.json", "/repos/demo/metadata/1.root.json",
		"/repos/demo/targets/printers/labelprinter-fw-2.4.1.bin"} {
		resp, err := http.Get(base + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("GET %s: %d", p, resp.StatusCode)
		}
	}
	if resp, _ := http.Get(base + "/repos/demo/targets/nope.bin"); resp.StatusCode != 404 {
		t.Errorf("unknown target: %d, want 404", resp.StatusCode)
	}
	panel := cachePanel{u: sys.updates, clock: time.Now}.Panel(context.Background())
	d := panel.Data.(CachePanel)
	if len(d.Repositories) != 1 || !d.Repositories[0].Verified || d.Repositories[0].Targets != 3 || d.Objects < 2 {
		t.Errorf("cache panel = %+v, want the verified demo repository with 3 targets and the cached objects", d)
	}
	if h := (&updatesService{u: sys.updates}).Health(); len(h) != 0 {
		t.Errorf("updates health = %+v, want none", h)
	}
	// The status page renders the panel.
	resp, err := http.Get("http://" + sys.AdminAddr() + "/")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(page), "Update cache") || !strings.Contains(string(page), "hello.txt") {
		t.Errorf("status page lacks the cache panel (status %d)", resp.StatusCode)
	}
}
