package netlab

import (
	"bytes"
	"sync"
)

// Buffer is a bytes.Buffer that one goroutine may write while another reads it: the
// sink of a command's output or of a logger that a test reads while the writers run.
// It is safe for concurrent use.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (s *Buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns what has been written so far.
func (s *Buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
