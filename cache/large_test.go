package cache_test

import (
	"context"
	"io"
	"net/http"
	"os"
	"runtime"
	"runtime/metrics"
	"sync"
	"testing"
	"time"

	"github.com/patchgate/patchgate/cache"
	"github.com/patchgate/patchgate/tuf/tuftest"
)

// TestLargeTargetBoundedMemory streams a 2 GiB target (generated on the
// fly) from the upstream through verification, the store and out to an
// endpoint, and asserts the heap never grows past 64 MiB.
func TestLargeTargetBoundedMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("2 GiB through the cache: skipped with -short")
	}
	const size = 2 << 30
	content := tuftest.NewGenerated(size, 42)
	repo := tuftest.New(t, tuftest.WithHashes("sha256"))
	repo.AddTargetContent("targets", "images/big.img", content, nil)
	repo.Publish()
	// The store goes to memory-backed /dev/shm when there is one: the test
	// is about the process's heap, not the disk's speed.
	dir := t.TempDir()
	if shm, err := os.MkdirTemp("/dev/shm", "pg-cache-test-"); err == nil {
		t.Cleanup(func() { os.RemoveAll(shm) })
		dir = shm
	}
	e := newEnv(t, repo, withConfig(func(c *cache.Config) { c.Dir = dir }))
	e.refresh(t)
	ti, err := e.mirror.Target(context.Background(), "images/big.img")
	if err != nil {
		t.Fatal(err)
	}

	runtime.GC()
	var peak uint64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		for {
			metrics.Read(sample)
			peak = max(peak, sample[0].Value.Uint64())
			select {
			case <-stop:
				return
			case <-time.After(2 * time.Millisecond):
			}
		}
	})
	resp, err := http.Get(e.srv.URL + "/repos/demo/targets/images/big.img")
	if err != nil {
		t.Fatal(err)
	}
	// Only the length is checked here: the cache verified the sha256 on the
	// way in, and the attack tests cover what reaches endpoints.
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	close(stop)
	wg.Wait()
	if err != nil || n != size || resp.StatusCode != 200 {
		t.Fatalf("status %d, %d bytes, err %v; want 200 with %d bytes", resp.StatusCode, n, err, int64(size))
	}
	if resp.Header.Get("ETag") != `"`+ti.Hashes["sha256"].String()+`"` {
		t.Errorf("ETag %s is not the verified sha256", resp.Header.Get("ETag"))
	}
	t.Logf("peak heap %d MiB", peak>>20)
	if peak > 64<<20 {
		t.Errorf("peak heap %d MiB, want under 64 MiB", peak>>20)
	}
}
