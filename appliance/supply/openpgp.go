package supply

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/clearsign"
	pgperrors "github.com/ProtonMail/go-crypto/openpgp/errors"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// Keyring is a source's pinned OpenPGP public keys: the only keys its signatures may
// be made with.
type Keyring struct {
	list openpgp.EntityList
	ids  []string
}

// ParseKeyring reads pinned public keys, armored or binary.
func ParseKeyring(data []byte) (*Keyring, error) {
	var list openpgp.EntityList
	var err error
	if bytes.Contains(data, []byte("-----BEGIN PGP")) {
		list, err = openpgp.ReadArmoredKeyRing(bytes.NewReader(data))
	} else {
		list, err = openpgp.ReadKeyRing(bytes.NewReader(data))
	}
	if err != nil {
		return nil, fmt.Errorf("read pinned key: %w", err)
	}
	if len(list) == 0 {
		return nil, errors.New("read pinned key: no key found")
	}
	k := &Keyring{list: list}
	for _, e := range list {
		k.ids = append(k.ids, keyID(e.PrimaryKey.KeyId))
	}
	return k, nil
}

// LoadKeyring reads pinned keys given inline (key, armored) or in keyFile (a relative
// path is joined to configDir); both empty: nil, no keys.
func LoadKeyring(key, keyFile, configDir string) (*Keyring, error) {
	if key == "" && keyFile == "" {
		return nil, nil
	}
	data := []byte(key)
	if keyFile != "" {
		p := keyFile
		if !filepath.IsAbs(p) && configDir != "" {
			p = filepath.Join(configDir, p)
		}
		var err error
		if data, err = os.ReadFile(p); err != nil {
			return nil, fmt.Errorf("key_file: %w", err)
		}
	}
	return ParseKeyring(data)
}

// IDs are the pinned primary keys' ids, as 16 hex digits.
func (k *Keyring) IDs() []string { return k.ids }

func keyID(id uint64) string { return fmt.Sprintf("%016X", id) }

// VerifyDetached checks a detached signature (armored or binary) over signed, made at
// or before now by a pinned key that is neither expired nor revoked at now. It returns
// the id of the key that signed. A refusal names the key.
func (k *Keyring) VerifyDetached(signed io.Reader, sig []byte, now time.Time) (string, error) {
	raw := sig
	if bytes.Contains(sig[:min(len(sig), 256)], []byte("-----BEGIN PGP SIGNATURE-----")) {
		blk, err := armor.Decode(bytes.NewReader(sig))
		if err != nil {
			return "", reject(reasonSignature, "signature: not OpenPGP armor: %v", err)
		}
		if raw, err = io.ReadAll(io.LimitReader(blk.Body, maxSignature)); err != nil {
			return "", reject(reasonSignature, "signature: %v", err)
		}
	}
	issuer := "unknown"
	if p, err := packet.Read(bytes.NewReader(raw)); err == nil {
		if s, ok := p.(*packet.Signature); ok && s.IssuerKeyId != nil {
			issuer = keyID(*s.IssuerKeyId)
		}
	} else {
		return "", reject(reasonSignature, "signature: not an OpenPGP signature: %v", err)
	}
	_, signer, err := openpgp.VerifyDetachedSignature(k.list, signed, bytes.NewReader(raw), &packet.Config{Time: func() time.Time { return now }})
	pinned := strings.Join(k.ids, ", ")
	switch {
	case err == nil:
		return keyID(signer.PrimaryKey.KeyId), nil
	case errors.Is(err, pgperrors.ErrUnknownIssuer):
		return "", reject(reasonSignature, "signature by key %s, not by the pinned key %s", issuer, pinned)
	case errors.Is(err, pgperrors.ErrKeyExpired):
		return "", reject(reasonKeyExpired, "signing key %s (pinned %s) expired before %s", issuer, pinned, now.UTC().Format(time.RFC3339))
	case errors.Is(err, pgperrors.ErrKeyRevoked):
		return "", reject(reasonKeyRevoked, "signing key %s (pinned %s) is revoked", issuer, pinned)
	case errors.Is(err, pgperrors.ErrSignatureExpired):
		return "", reject(reasonSignature, "signature by key %s expired", issuer)
	default:
		return "", reject(reasonSignature, "bad signature by key %s: %v", issuer, err)
	}
}

// maxSignature bounds a detached signature.
const maxSignature = 64 << 10

// VerifyClearsigned checks a clearsigned message (an InRelease) and returns its signed
// text and the signing key's id.
func (k *Keyring) VerifyClearsigned(data []byte, now time.Time) ([]byte, string, error) {
	blk, _ := clearsign.Decode(data)
	if blk == nil {
		return nil, "", reject(reasonSignature, "not a clearsigned OpenPGP message")
	}
	sig, err := io.ReadAll(io.LimitReader(blk.ArmoredSignature.Body, maxSignature))
	if err != nil {
		return nil, "", reject(reasonSignature, "signature: %v", err)
	}
	id, err := k.VerifyDetached(bytes.NewReader(blk.Bytes), sig, now)
	if err != nil {
		return nil, "", err
	}
	return blk.Plaintext, id, nil
}
