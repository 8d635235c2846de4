package advisory_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// t0 is the fake clock's start; the provider's key and signatures are an hour older.
var t0 = time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)

// provider is a CSAF provider's signing key.
type provider struct {
	e   *openpgp.Entity
	cfg *packet.Config
}

func newProvider(t *testing.T) provider {
	t.Helper()
	cfg := &packet.Config{Time: func() time.Time { return t0.Add(-time.Hour) }, Algorithm: packet.PubKeyAlgoEdDSA}
	e, err := openpgp.NewEntity("CSAF provider", "test", "psirt@vendor.example.invalid", cfg)
	if err != nil {
		t.Fatal(err)
	}
	return provider{e, cfg}
}

// public is the provider's key, armored, as a site pins it.
func (p provider) public(t *testing.T) string {
	t.Helper()
	var out bytes.Buffer
	w, err := armor.Encode(&out, openpgp.PublicKeyType, nil)
	if err == nil {
		err = p.e.Serialize(w)
	}
	if err == nil {
		err = w.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
	return out.String()
}

// sign is the armored detached signature (the .asc file) of doc.
func (p provider) sign(t *testing.T, doc []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	if err := openpgp.ArmoredDetachSign(&out, p.e, bytes.NewReader(doc), p.cfg); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// sha256File is the .sha256 file of doc named name.
func sha256File(doc []byte, name string) []byte {
	sum := sha256.Sum256(doc)
	return []byte(hex.EncodeToString(sum[:]) + "  " + name + "\n")
}
