package resolver

import (
	"net/netip"
	"sync/atomic"
	"time"
)

// AssetNamer names the device behind a client address; the inventory implements it.
// NameOf returns "" when the address is not a known asset. It must be safe for
// concurrent use and quick: the status panel and the query log call it per entry.
type AssetNamer interface {
	NameOf(addr netip.Addr) string
}

// AnswerSink learns the addresses that allowed, forwarded answers returned, so that the
// gateway can let the client that asked (and only it) reach them (and only them) for
// ttl; the gateway implements it. Learned is called for every such answer served (from
// upstream or from the cache, ttl then being what is left), before the answer is sent
// to the client, so that the egress set holds the addresses when the client connects:
// it must be safe for concurrent use and quick (queue slow work). client is the
// address the query came from; name is the query name in lower case without the
// trailing dot; addrs are the A and AAAA records of the answer section.
type AnswerSink interface {
	Learned(segment string, client netip.Addr, name string, addrs []netip.Addr, ttl time.Duration)
}

// EventSink receives bursts of blocked queries ("printer-3 tried to resolve x.example
// 12 times"); audit implements it. Blocked is called from the resolver's own goroutine
// once per event window for each (client, name) pair seen blocked in that window; it
// must be safe for concurrent use and should not block for long.
type EventSink interface {
	Blocked(b BlockedBurst)
}

// BlockedBurst is one device's blocked queries for one name within one event window.
type BlockedBurst struct {
	Segment string     `json:"segment"`
	Client  netip.Addr `json:"client"`
	Asset   string     `json:"asset,omitempty"` // from the AssetNamer; "" when unknown
	Name    string     `json:"name"`
	Type    string     `json:"type"`   // query type of the first query, e.g. "A"
	Reason  string     `json:"reason"` // why it was blocked, e.g. "not allowed"
	First   time.Time  `json:"first"`
	Last    time.Time  `json:"last"`
	Count   int        `json:"count"`
}

// hooks holds the optional hooks; each may be set at any time (other subsystems are
// built after the resolver) and read without locks on the query path.
type hooks struct {
	assets  atomic.Pointer[AssetNamer]
	answers atomic.Pointer[AnswerSink]
	events  atomic.Pointer[EventSink]
}

func (h *hooks) assetName(a netip.Addr) string {
	if p := h.assets.Load(); p != nil && *p != nil {
		return (*p).NameOf(a)
	}
	return ""
}

func (h *hooks) answerSink() AnswerSink {
	if p := h.answers.Load(); p != nil {
		return *p
	}
	return nil
}

func (h *hooks) eventSink() EventSink {
	if p := h.events.Load(); p != nil {
		return *p
	}
	return nil
}

// SetAssetNamer sets (or with nil clears) the asset namer. Safe for concurrent use.
func (s *Server) SetAssetNamer(a AssetNamer) { s.hooks.assets.Store(&a) }

// SetAnswerSink sets (or with nil clears) the answer sink. Safe for concurrent use.
func (s *Server) SetAnswerSink(a AnswerSink) { s.hooks.answers.Store(&a) }

// SetEventSink sets (or with nil clears) the blocked-query event sink. Safe for
// concurrent use.
func (s *Server) SetEventSink(e EventSink) { s.hooks.events.Store(&e) }
