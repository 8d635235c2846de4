package cache

import (
	"container/list"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"sync"
)

// smallObjects keeps the bytes of small, hot stored objects in memory, so a
// hit on one costs no open, seek, stat and close (for a 4 KiB object those
// syscalls dominate; sendfile gains nothing at that size). Bytes enter only
// after their sha256 matched the object's key. Large objects are always
// served from their file (sendfile). It is safe for concurrent use.
type smallObjects struct {
	maxObject int64
	maxTotal  int64

	mu    sync.Mutex
	items map[string]*list.Element // key -> element of lru holding *smallItem
	lru   *list.List
	total int64
}

type smallItem struct {
	key  string
	data []byte
}

func newSmallObjects(maxObject, maxTotal int64) *smallObjects {
	return &smallObjects{maxObject: maxObject, maxTotal: maxTotal, items: map[string]*list.Element{}, lru: list.New()}
}

func (s *smallObjects) get(key string) ([]byte, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	el, ok := s.items[key]
	if !ok {
		return nil, false
	}
	s.lru.MoveToFront(el)
	return el.Value.(*smallItem).data, true
}

// load reads a stored object of size bytes into memory if it is small,
// verifying its sha256 against key; it returns nil when it is not kept.
func (s *smallObjects) load(path, key string, size int64) []byte {
	if size > s.maxObject || s.maxTotal <= 0 {
		return nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	data := make([]byte, size)
	if _, err := io.ReadFull(f, data); err != nil {
		return nil
	}
	if sum := sha256.Sum256(data); hex.EncodeToString(sum[:]) != key {
		return nil // damaged: the file path will notice and drop it
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if el, ok := s.items[key]; ok {
		return el.Value.(*smallItem).data
	}
	s.items[key] = s.lru.PushFront(&smallItem{key: key, data: data})
	s.total += size
	for s.total > s.maxTotal {
		el := s.lru.Back()
		it := el.Value.(*smallItem)
		s.lru.Remove(el)
		delete(s.items, it.key)
		s.total -= int64(len(it.data))
	}
	return data
}

func (s *smallObjects) drop(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if el, ok := s.items[key]; ok {
		s.lru.Remove(el)
		delete(s.items, key)
		s.total -= int64(len(el.Value.(*smallItem).data))
	}
}

// removeObject deletes a stored object and its in-memory copy.
func (c *Cache) removeObject(key string) (int64, error) {
	c.small.drop(key)
	return c.store.remove(key)
}
