package clock

import (
	"testing"
	"time"
)

func TestFakeAfterFiresOnlyWhenDue(t *testing.T) {
	start := time.Date(2026, 3, 8, 1, 0, 0, 0, time.UTC)
	f := NewFake(start)
	ch := f.After(time.Hour)
	f.Advance(59 * time.Minute)
	select {
	case <-ch:
		t.Fatal("After(1h) fired after 59m")
	default:
	}
	f.Advance(time.Minute)
	select {
	case got := <-ch:
		if want := start.Add(time.Hour); !got.Equal(want) {
			t.Fatalf("After fired with %v, want %v", got, want)
		}
	default:
		t.Fatal("After(1h) did not fire after 1h")
	}
	if n := f.Waiters(); n != 0 {
		t.Fatalf("Waiters() = %d after firing, want 0", n)
	}
}

func TestFakeTicker(t *testing.T) {
	f := NewFake(time.Unix(0, 0))
	tk := f.NewTicker(10 * time.Second)
	var got []int64
	for i := 0; i < 3; i++ {
		f.Advance(10 * time.Second)
		got = append(got, (<-tk.C()).Unix())
	}
	want := []int64{10, 20, 30}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("tick %d at %d, want %d", i, got[i], want[i])
		}
	}
	tk.Stop()
	f.Advance(time.Minute)
	select {
	case <-tk.C():
		t.Fatal("stopped ticker fired")
	default:
	}
}

func TestFakeAutoAdvance(t *testing.T) {
	start := time.Unix(1000, 0)
	tests := []struct {
		name  string
		waits []time.Duration
		want  time.Duration // total the clock moved
	}{
		{"none", nil, 0},
		{"one wait", []time.Duration{time.Second}, time.Second},
		{"waits add up", []time.Duration{time.Second, 250 * time.Millisecond, time.Minute}, time.Minute + 1250*time.Millisecond},
		{"zero and negative waits move nothing", []time.Duration{0, -time.Second}, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := NewFake(start)
			f.SetAutoAdvance(true)
			for i, d := range tc.waits {
				before := f.Now()
				select {
				case got := <-f.After(d):
					if want := before.Add(max(d, 0)); !got.Equal(want) {
						t.Errorf("After(%s) #%d fired with %v, want %v", d, i, got, want)
					}
				default:
					t.Fatalf("After(%s) #%d had not fired when returned", d, i)
				}
			}
			if got := f.Now().Sub(start); got != tc.want {
				t.Errorf("clock moved %s, want %s", got, tc.want)
			}
			if n := f.Waiters(); n != 0 {
				t.Errorf("Waiters() = %d, want 0", n)
			}
		})
	}
}

func TestFakeAutoAdvanceFiresOtherTimers(t *testing.T) {
	f := NewFake(time.Unix(0, 0))
	other := f.After(time.Minute) // armed before auto-advance
	f.SetAutoAdvance(true)
	<-f.After(2 * time.Minute)
	select {
	case got := <-other:
		if got.Unix() != 60 {
			t.Errorf("the earlier timer fired at %d, want 60", got.Unix())
		}
	default:
		t.Error("a timer due during an auto-advance did not fire")
	}
	f.SetAutoAdvance(false)
	ch := f.After(time.Second)
	select {
	case <-ch:
		t.Error("After fired at once with auto-advance off")
	default:
	}
}
