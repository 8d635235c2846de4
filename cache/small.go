package cache

import (
	"container/list"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"strconv"
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

// smallItem is one object in memory, with the values of its response
// headers computed once (a hit then allocates nothing for them). The
// slices are shared by every response and never written to.
type smallItem struct {
	key    string
	data   []byte
	etag   []string // `"KEY"`
	length []string // len(data) in decimal
}

func newSmallItem(key string, data []byte) *smallItem {
	return &smallItem{key: key, data: data,
		etag: []string{`"` + key + `"`}, length: []string{strconv.Itoa(len(data))}}
}

func newSmallObjects(maxObject, maxTotal int64) *smallObjects {
	return &smallObjects{maxObject: maxObject, maxTotal: maxTotal, items: map[string]*list.Element{}, lru: list.New()}
}

// get returns the item of key, or nil.
func (s *smallObjects) get(key string) *smallItem {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.getLocked(key)
}

// getSum is get by the raw sha256, without building the key string.
func (s *smallObjects) getSum(sum []byte) *smallItem {
	var key [2 * sha256.Size]byte
	hex.Encode(key[:], sum)
	s.mu.Lock()
	defer s.mu.Unlock()
	el, ok := s.items[string(key[:])] // no allocation: a map index by converted bytes
	if !ok {
		return nil
	}
	s.lru.MoveToFront(el)
	return el.Value.(*smallItem)
}

func (s *smallObjects) getLocked(key string) *smallItem {
	el, ok := s.items[key]
	if !ok {
		return nil
	}
	s.lru.MoveToFront(el)
	return el.Value.(*smallItem)
}

// load reads a stored object of size bytes into memory if it is small,
// verifying its sha256 against key; it returns nil when it is not kept.
func (s *smallObjects) load(path, key string, size int64) *smallItem {
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
	if it := s.getLocked(key); it != nil {
		return it
	}
	it := newSmallItem(key, data)
	s.items[key] = s.lru.PushFront(it)
	s.total += size
	for s.total > s.maxTotal {
		el := s.lru.Back()
		old := el.Value.(*smallItem)
		s.lru.Remove(el)
		delete(s.items, old.key)
		s.total -= int64(len(old.data))
	}
	return it
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

// has reports whether the object of the raw sha256 and length is held, without
// touching its place in the LRU.
func (s *smallObjects) has(sum []byte, length int64) bool {
	var key [2 * sha256.Size]byte
	hex.Encode(key[:], sum)
	s.mu.Lock()
	defer s.mu.Unlock()
	el, ok := s.items[string(key[:])]
	return ok && int64(len(el.Value.(*smallItem).data)) == length
}
