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
