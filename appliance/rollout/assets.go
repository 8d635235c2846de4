package rollout

import (
	"context"
	"net/netip"
	"slices"
	"sync"
)

// MemAssets is an in-memory Assets: the devices an admin or a test put in. The zero
// value is empty and ready; it is safe for concurrent use.
type MemAssets struct {
	mu     sync.RWMutex
	assets []Asset
	addrs  map[netip.Addr]string // address → asset ID
}

// Put adds or replaces an asset (by ID) and the addresses it is seen at.
func (m *MemAssets) Put(a Asset, addrs ...netip.Addr) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if i := slices.IndexFunc(m.assets, func(x Asset) bool { return x.ID == a.ID }); i >= 0 {
		m.assets[i] = a
	} else {
		m.assets = append(m.assets, a)
	}
	if m.addrs == nil {
		m.addrs = map[netip.Addr]string{}
	}
	for _, ad := range addrs {
		m.addrs[ad.Unmap()] = a.ID
	}
}

// Remove forgets an asset and its addresses.
func (m *MemAssets) Remove(id string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.assets = slices.DeleteFunc(m.assets, func(x Asset) bool { return x.ID == id })
	for ad, aid := range m.addrs {
		if aid == id {
			delete(m.addrs, ad)
		}
	}
}

func (m *MemAssets) byID(id string) (Asset, bool) {
	i := slices.IndexFunc(m.assets, func(x Asset) bool { return x.ID == id })
	if i < 0 {
		return Asset{}, false
	}
	return m.assets[i], true
}

// ByAddr implements Assets.
func (m *MemAssets) ByAddr(_ context.Context, addr netip.Addr) (Asset, bool, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	id, ok := m.addrs[addr.Unmap()]
	if !ok {
		return Asset{}, false, nil
	}
	a, ok := m.byID(id)
	return a, ok, nil
}

// ByAgent implements Assets.
func (m *MemAssets) ByAgent(_ context.Context, agentID string) (Asset, bool, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	i := slices.IndexFunc(m.assets, func(x Asset) bool { return x.AgentID == agentID && agentID != "" })
	if i < 0 {
		return Asset{}, false, nil
	}
	return m.assets[i], true, nil
}

// List implements Assets.
func (m *MemAssets) List(context.Context) ([]Asset, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return slices.Clone(m.assets), nil
}
