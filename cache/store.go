package cache

import (
	"container/list"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// store is the on-disk content-addressed object store:
//
//	DIR/objects/AB/ABCDEF...   whole, verified objects named by their sha256
//	DIR/tmp/fetch-*            downloads in progress (removed at start)
//
// An object appears only by rename of a fully written, verified and fsynced
// temp file, so a crash leaves either no object or a whole one.
type store struct {
	dir string

	mu      sync.Mutex
	objects map[string]*entry // sha256 hex -> entry
	lru     *list.List        // of *entry, most recently used at the front
	total   int64
}

type entry struct {
	key      string
	size     int64
	lastUsed time.Time
	touched  time.Time // last mtime written to disk
	repo     string    // last repository and path served from it (memory only)
	path     string
	elem     *list.Element
}

func openStore(dir string) (*store, int, error) {
	s := &store{dir: dir, objects: map[string]*entry{}, lru: list.New()}
	if err := os.MkdirAll(filepath.Join(dir, "objects"), 0o750); err != nil {
		return nil, 0, err
	}
	// Downloads in progress when the process stopped are not resumable
	// across restarts: drop them.
	if err := os.RemoveAll(filepath.Join(dir, "tmp")); err != nil {
		return nil, 0, err
	}
	if err := os.MkdirAll(filepath.Join(dir, "tmp"), 0o750); err != nil {
		return nil, 0, err
	}
	var found []*entry
	removed := 0
	err := filepath.WalkDir(filepath.Join(dir, "objects"), func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		name := d.Name()
		if !validKey(name) || filepath.Base(filepath.Dir(path)) != name[:2] {
			// Not ours (or a leftover): never serve it.
			removed++
			return os.Remove(path)
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		found = append(found, &entry{key: name, size: info.Size(), lastUsed: info.ModTime(), touched: info.ModTime()})
		return nil
	})
	if err != nil {
		return nil, 0, err
	}
	// Oldest first, so the most recently used ends at the front.
	sortEntries(found)
	for _, e := range found {
		s.add(e)
	}
	return s, removed, nil
}

func sortEntries(es []*entry) {
	for i := 1; i < len(es); i++ {
		for j := i; j > 0 && es[j].lastUsed.Before(es[j-1].lastUsed); j-- {
			es[j], es[j-1] = es[j-1], es[j]
		}
	}
}

func validKey(k string) bool {
	if len(k) != 64 {
		return false
	}
	_, err := hex.DecodeString(k)
	return err == nil && strings.ToLower(k) == k
}

func (s *store) objectPath(key string) string { return objectFile(s.dir, key) }

func objectFile(dir, key string) string { return filepath.Join(dir, "objects", key[:2], key) }

// ObjectFile is where a cache in dir keeps the object whose sha256 is key (lowercase
// hex): for a reader in another process, such as the appliance's root installer, which
// verifies the bytes against TUF itself. It does not say whether the object is there.
func ObjectFile(dir, key string) (string, error) {
	if !validKey(key) {
		return "", fmt.Errorf("cache: object file: want a sha256 in lowercase hex, got %q", key)
	}
	return objectFile(dir, key), nil
}

func (s *store) tmpDir() string { return filepath.Join(s.dir, "tmp") }

// add indexes e as most recently used. s.mu must not be held.
func (s *store) add(e *entry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.objects[e.key]; ok {
		s.lru.Remove(old.elem)
		s.total -= old.size
	}
	e.elem = s.lru.PushFront(e)
	s.objects[e.key] = e
	s.total += e.size
}

// lookup returns the entry for key and marks it used.
func (s *store) lookup(key string, now time.Time, repo, path string) (*entry, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.objects[key]
	if !ok {
		return nil, false
	}
	e.lastUsed = now
	e.repo, e.path = repo, path
	s.lru.MoveToFront(e.elem)
	if now.Sub(e.touched) > time.Hour {
		// Persist the LRU order across restarts, at most hourly per object.
		e.touched = now
		_ = os.Chtimes(s.objectPath(key), now, now)
	}
	return e, true
}

// commit renames a verified, fsynced temp file into the store as key.
func (s *store) commit(tmp, key string, size int64, now time.Time, repo, path string) error {
	dst := s.objectPath(key)
	if err := os.MkdirAll(filepath.Dir(dst), 0o750); err != nil {
		return err
	}
	if err := os.Chtimes(tmp, now, now); err != nil {
		return err
	}
	if err := os.Rename(tmp, dst); err != nil {
		return err
	}
	if err := syncDir(filepath.Dir(dst)); err != nil {
		return err
	}
	s.add(&entry{key: key, size: size, lastUsed: now, touched: now, repo: repo, path: path})
	return nil
}

// remove deletes an object; a missing one is not an error.
func (s *store) remove(key string) (int64, error) {
	s.mu.Lock()
	e, ok := s.objects[key]
	if ok {
		s.lru.Remove(e.elem)
		delete(s.objects, key)
		s.total -= e.size
	}
	s.mu.Unlock()
	err := os.Remove(s.objectPath(key))
	if errors.Is(err, fs.ErrNotExist) {
		err = nil
	}
	if !ok {
		return 0, err
	}
	return e.size, err
}

// evictable returns, least recently used first, the objects to remove so the
// total fits quota, skipping pinned keys and keep.
func (s *store) evictable(quota int64, pinned map[string]bool, keep string) (victims []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	excess := s.total - quota
	for el := s.lru.Back(); el != nil && excess > 0; el = el.Prev() {
		e := el.Value.(*entry)
		if pinned[e.key] || e.key == keep {
			continue
		}
		victims = append(victims, e.key)
		excess -= e.size
	}
	return victims
}

func (s *store) stats() (objects int, bytes int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.objects), s.total
}

// keys returns every stored key, least recently used first.
func (s *store) entries() []entry {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]entry, 0, len(s.objects))
	for el := s.lru.Back(); el != nil; el = el.Prev() {
		e := *el.Value.(*entry)
		e.elem = nil
		out = append(out, e)
	}
	return out
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", dir, err)
	}
	return nil
}
