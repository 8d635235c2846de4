package resolver

import (
	"testing"
	"time"

	"github.com/miekg/dns"
)

// TestCacheHitsShareAnAgedCopy: hits within one second share one message with the TTLs
// counted down; the next second makes a new one; the stored answer never changes.
func TestCacheHitsShareAnAgedCopy(t *testing.T) {
	c := newAnswerCache(CacheConfig{Size: 10, MaxTTL: time.Hour, NegativeTTL: time.Minute})
	up := new(dns.Msg)
	up.SetQuestion("a.example.", dns.TypeA)
	up.Answer = []dns.RR{mustRR(t, "a.example. 300 IN A 192.0.2.1")}
	up.Ns = []dns.RR{mustRR(t, "example. 600 IN NS ns.example.")}
	k := cacheKey{name: "a.example", qtype: dns.TypeA}
	stored := c.put(k, up, testEpoch)

	ttls := func(m *dns.Msg) [2]uint32 { return [2]uint32{m.Answer[0].Header().Ttl, m.Ns[0].Header().Ttl} }
	tests := []struct {
		name    string
		at      time.Duration
		want    [2]uint32
		samePtr bool // the same message as the previous hit
	}{
		{"same second as stored: the stored answer", 500 * time.Millisecond, [2]uint32{300, 600}, false},
		{"10 s later", 10 * time.Second, [2]uint32{290, 590}, false},
		{"same second again: shared", 10*time.Second + 900*time.Millisecond, [2]uint32{290, 590}, true},
		{"next second: a new copy", 11 * time.Second, [2]uint32{289, 589}, false},
	}
	var prev *dns.Msg
	for _, tc := range tests {
		h, ok := c.get(k, testEpoch.Add(tc.at), 0)
		if !ok {
			t.Fatalf("%s: miss", tc.name)
		}
		if got := ttls(h.msg); got != tc.want {
			t.Errorf("%s: TTLs %v, want %v", tc.name, got, tc.want)
		}
		if (h.msg == prev) != tc.samePtr {
			t.Errorf("%s: shared with the previous hit = %v, want %v", tc.name, h.msg == prev, tc.samePtr)
		}
		prev = h.msg
	}
	if got := ttls(stored); got != [2]uint32{300, 600} {
		t.Errorf("stored answer's TTLs changed to %v", got)
	}
}
