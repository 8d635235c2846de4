package supply

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/patchgate/patchgate/cache"
	"github.com/patchgate/patchgate/clock"
	"github.com/patchgate/patchgate/clock/clocktest"
	"github.com/patchgate/patchgate/conf"
)

func tod(h, m int) cache.TimeOfDay {
	return cache.TimeOfDay(time.Duration(h)*time.Hour + time.Duration(m)*time.Minute)
}

// A download window says when a scheduled check may start and when it must stop.
// t0 is Saturday 2026-12-05 12:00 UTC.
func TestWindowSchedule(t *testing.T) {
	day := func(d, h int) time.Time { return time.Date(2026, 12, d, h, 0, 0, 0, time.UTC) }
	for _, tc := range []struct {
		name       string
		w          *Window
		at         time.Time
		next       time.Time
		closes     time.Time // zero: never
		wantClosed bool
	}{
		{name: "no window is always open", w: nil, at: t0, next: t0},
		{name: "before a night window", w: &Window{From: tod(22, 0), To: tod(6, 0)}, at: t0, next: day(5, 22), wantClosed: true},
		{name: "inside a night window after midnight", w: &Window{From: tod(22, 0), To: tod(6, 0)}, at: day(6, 3), next: day(6, 3), closes: day(6, 6)},
		{name: "inside a day window", w: &Window{From: tod(9, 0), To: tod(17, 0)}, at: t0, next: t0, closes: day(5, 17)},
		{name: "only on mondays", w: &Window{Days: []string{"mon"}, From: tod(22, 0), To: tod(6, 0)}, at: t0, next: day(7, 22), wantClosed: true},
		{name: "monday night reaches into tuesday", w: &Window{Days: []string{"Mon"}, From: tod(22, 0), To: tod(6, 0)}, at: day(8, 5), next: day(8, 5), closes: day(8, 6)},
		{name: "all day every day never closes", w: &Window{From: tod(0, 0), To: tod(24, 0)}, at: t0, next: t0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSchedule(tc.w, time.UTC)
			if got := s.Next(tc.at); !got.Equal(tc.next) {
				t.Errorf("Next(%s) = %s, want %s", tc.at, got, tc.next)
			}
			if s.Open(tc.at) == tc.wantClosed {
				t.Errorf("Open(%s) = %v, want %v", tc.at, !tc.wantClosed, !tc.wantClosed)
			}
			if tc.wantClosed {
				return
			}
			if got := s.closes(tc.at); !got.Equal(tc.closes) {
				t.Errorf("closes(%s) = %s, want %s", tc.at, got, tc.closes)
			}
		})
	}
}

func TestWindowValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		w    Window
		want string
	}{
		{name: "empty window", w: Window{From: tod(6, 0), To: tod(6, 0)}, want: "s.download_window.to"},
		{name: "unknown day", w: Window{Days: []string{"someday"}, From: tod(1, 0), To: tod(2, 0)}, want: "s.download_window.days[0]"},
		{name: "from 24:00", w: Window{From: tod(24, 0), To: tod(2, 0)}, want: "s.download_window.from"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var ps conf.Problems
			tc.w.validate("s.download_window", &ps)
			if len(ps) != 1 || ps[0].Key != tc.want {
				t.Errorf("problems = %v, want one at %s", ps, tc.want)
			}
		})
	}
}

// A source with a night window is not checked by day: its next check is the window's
// opening, when the scheduler checks it; "check now" runs at once all the same.
func TestScheduledChecksWaitForTheWindow(t *testing.T) {
	v := newVendor(t)
	data := []byte("night download")
	var mu sync.Mutex
	gets := 0
	v.Handle("/tool.msi", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		gets++
		mu.Unlock()
		w.Write(data)
	})
	clk := clock.NewFake(t0)
	s := openService(t, clk, nil, Source{Name: "night", Kind: KindURL, URL: v.URL("/tool.msi"), SHA256: sum(data),
		Interval: conf.Duration(time.Hour), DownloadWindow: &Window{From: tod(22, 0), To: tod(6, 0)}})
	s.opts.Location = time.UTC
	s.sources[0].window = newSchedule(s.sources[0].cfg.DownloadWindow, time.UTC)
	clocktest.Run(t, s.Run)
	opens := time.Date(2026, 12, 5, 22, 0, 0, 0, time.UTC)
	clocktest.WaitFor(t, "the next check to be scheduled", func() bool {
		n := s.Sources()[0].NextCheck
		return n != nil && n.Equal(opens)
	})
	mu.Lock()
	byDay := gets
	mu.Unlock()
	if st := s.Sources()[0]; st.Checks != 0 || byDay != 0 || st.Window != "22:00-06:00" {
		t.Fatalf("status by day = %+v with %d downloads, want no check yet and the window shown", st, byDay)
	}
	if _, err := s.CheckSoon("night"); err != nil {
		t.Fatal(err)
	}
	clocktest.WaitFor(t, "the check asked for", func() bool { return s.Sources()[0].Checks == 1 })
	if n := s.Sources()[0].NextCheck; n == nil || !n.Equal(opens) {
		t.Errorf("next check after the asked-for one = %v, want still %s", n, opens)
	}
	clocktest.WaitFor(t, "the scheduled check in the window", func() bool {
		if clk.Now().Before(opens.Add(time.Hour)) {
			clk.Advance(10 * time.Minute)
		}
		return s.Sources()[0].Checks == 2
	})
	st := s.Sources()[0]
	if st.LastCheck.Before(opens) || st.Result != "ok" {
		t.Errorf("scheduled check = %+v, want ok at or after %s", st, opens)
	}
}

// A download still running when the window closes is stopped without a rejection
// (no audit, no health problem) and resumed with Range in the next window.
func TestWindowCloseDefersAndResumes(t *testing.T) {
	v := newVendor(t)
	data := []byte(strings.Repeat("0123456789", 10000))
	var mu sync.Mutex
	var ranges []string
	arrived := make(chan struct{}, 1)
	v.Handle("/big.bin", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		ranges = append(ranges, r.Header.Get("Range"))
		first := len(ranges) == 1
		mu.Unlock()
		if first {
			w.Header().Set("Content-Length", fmt.Sprint(len(data)))
			w.Write(data[:40000])
			w.(http.Flusher).Flush()
			arrived <- struct{}{}
			<-r.Context().Done()
			return
		}
		http.ServeContent(w, r, "", time.Time{}, strings.NewReader(string(data)))
	})
	clk := clock.NewFake(t0)
	ev := &events{}
	s := openService(t, clk, ev, Source{Name: "big", Kind: KindURL, URL: v.URL("/big.bin"), SHA256: sum(data),
		Timeout: conf.Duration(2 * time.Hour), DownloadWindow: &Window{From: tod(12, 0), To: tod(13, 0)}})
	src := s.sources[0]
	src.window = newSchedule(src.cfg.DownloadWindow, time.UTC)
	finished := make(chan struct{})
	go func() { s.check(context.Background(), src, false); close(finished) }()
	<-arrived
	clocktest.WaitFor(t, "the partial download on disk", func() bool {
		fi, err := statPart(s, "big", v.URL("/big.bin"))
		return err == nil && fi >= 40000
	})
	clk.Advance(time.Hour) // 13:00: the window closes
	<-finished
	st := src.status()
	if st.Result != "deferred" || st.Reason != reasonWindow || len(ev.rejected) != 0 || len(s.Health()) != 0 || st.Candidates != 0 {
		t.Fatalf("after the window closed: %+v, rejected %v, health %v; want deferred, nothing rejected or staged", st, ev.rejected, s.Health())
	}
	clk.Set(t0.Add(24 * time.Hour)) // the next window
	s.check(context.Background(), src, false)
	if st := src.status(); st.Result != "ok" || st.Candidates != 1 {
		t.Fatalf("in the next window: %+v, want ok with the candidate", st)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(ranges) != 2 || ranges[1] != "bytes=40000-" {
		t.Errorf("requests' ranges = %q, want the second resuming at 40000", ranges)
	}
}

func statPart(s *Service, source, url string) (int64, error) {
	fi, err := os.Stat(s.partPath(source, url))
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}
