package auth

import "testing"

// BenchmarkPasswordHash measures one argon2id verification with the production
// parameters: the cost of a login attempt (and of a guess).
func BenchmarkPasswordHash(b *testing.B) {
	h := hashPassword("correct horse battery", defaultArgon)
	for b.Loop() {
		verifyPassword("correct horse battery", h)
	}
}
