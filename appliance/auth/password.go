package auth

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/argon2"
)

// argon2id parameters: OWASP's recommendation (19 MiB, 2 passes, 1 lane). The encoded
// hash carries them, so raising them later keeps old hashes valid.
type argonParams struct {
	memKiB  uint32
	time    uint32
	threads uint8
}

var defaultArgon = argonParams{memKiB: 19 * 1024, time: 2, threads: 1}

// MinPasswordLength is the shortest password accepted.
const MinPasswordLength = 12

func checkPassword(pw string) error {
	if len([]rune(pw)) < MinPasswordLength {
		return fmt.Errorf("password must have at least %d characters", MinPasswordLength)
	}
	if len(pw) > 1024 {
		return errors.New("password is too long")
	}
	return nil
}

// hashPassword returns the PHC-style encoding $argon2id$v=19$m=...,t=...,p=...$salt$key.
func hashPassword(pw string, p argonParams) string {
	salt := make([]byte, 16)
	rand.Read(salt)
	key := argon2.IDKey([]byte(pw), salt, p.time, p.memKiB, p.threads, 32)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.memKiB, p.time, p.threads, b64.EncodeToString(salt), b64.EncodeToString(key))
}

// verifyPassword checks pw against an encoded hash in constant time.
func verifyPassword(pw, encoded string) bool {
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false
	}
	var v int
	var p argonParams
	if _, err := fmt.Sscanf(parts[2], "v=%d", &v); err != nil || v != argon2.Version {
		return false
	}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.memKiB, &p.time, &p.threads); err != nil || p.memKiB > 1<<21 || p.time > 16 || p.threads == 0 {
		return false
	}
	b64 := base64.RawStdEncoding
	salt, err1 := b64.DecodeString(parts[4])
	want, err2 := b64.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(want) == 0 {
		return false
	}
	got := argon2.IDKey([]byte(pw), salt, p.time, p.memKiB, p.threads, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1
}

// dummyHash is verified against when the user does not exist, so that a login for an
// unknown name takes as long as one for a known name.
var dummyHash = hashPassword("not a password of anyone", defaultArgon)
