package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"encoding/hex"
	"strings"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
)

const totpPeriod = 30

var totpOpts = totp.ValidateOpts{Period: totpPeriod, Skew: 0, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1}

// matchTOTP returns the time step (Unix time / 30) whose code equals code, looking one
// step back and forward for clock drift, or 0.
func matchTOTP(secret, code string, now time.Time) int64 {
	code = strings.TrimSpace(code)
	if len(code) != 6 {
		return 0
	}
	for _, k := range []int64{0, -1, 1} {
		t := now.Add(time.Duration(k*totpPeriod) * time.Second)
		want, err := totp.GenerateCodeCustom(secret, t, totpOpts)
		if err != nil {
			return 0
		}
		if subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1 {
			return t.Unix() / totpPeriod
		}
	}
	return 0
}

// newTOTPKey makes a secret for user.
func newTOTPKey(issuer, user string) (*otp.Key, error) {
	return totp.Generate(totp.GenerateOpts{Issuer: issuer, AccountName: user, Period: totpPeriod, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
}

// newRecoveryCodes returns n fresh codes (shown once) and their hashes (stored).
func newRecoveryCodes(n int) (codes, hashes []string) {
	for range n {
		b := make([]byte, 10)
		rand.Read(b)
		c := strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b))
		c = c[:8] + "-" + c[8:]
		codes = append(codes, c)
		hashes = append(hashes, hashSecret(c))
	}
	return codes, hashes
}

// hashSecret hashes a high-entropy random secret (session ID, token, recovery code) for
// storage. Passwords use argon2id instead.
func hashSecret(s string) string {
	sum := sha256.Sum256([]byte(strings.TrimSpace(strings.ToLower(s))))
	return hex.EncodeToString(sum[:])
}

func randomString(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return strings.TrimRight(base32.StdEncoding.EncodeToString(b), "=")
}
