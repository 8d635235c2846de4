package selfupdate

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"syscall"
	"time"

	"github.com/patchgate/patchgate/appliance/audit"
	"github.com/patchgate/patchgate/atomicfile"
	"github.com/patchgate/patchgate/image/abupdate"
)

// The files of the request directory (the daemon's STATE/selfupdate). The daemon writes
// RequestFile; the installer claims it by renaming it to ApplyingFile, and leaves its
// outcome in ResultFile, which the daemon records and renames to SeenFile.
const (
	RequestFile  = "request.json"
	ApplyingFile = "applying.json"
	ResultFile   = "result.json"
	SeenFile     = "result.seen.json"
)

// Actions a Request can ask for.
const (
	ActionInstall  = "install"  // install Version into the other slot
	ActionRollback = "rollback" // mark the running version bad; the previous one boots next
)

// Request is what the daemon asks of the root installer.
type Request struct {
	ID          string    `json:"id"`
	Action      string    `json:"action"`
	Version     string    `json:"version,omitempty"` // install only
	Reboot      bool      `json:"reboot"`            // reboot once it is done
	RequestedBy string    `json:"requested_by"`
	RequestedAt time.Time `json:"requested_at"`
}

// Result is the installer's answer to a Request.
type Result struct {
	ID          string    `json:"id"`
	Action      string    `json:"action"`
	Version     string    `json:"version,omitempty"` // installed, or rolled back to
	OK          bool      `json:"ok"`
	Error       string    `json:"error,omitempty"`
	Reboot      bool      `json:"reboot"`
	RequestedBy string    `json:"requested_by,omitempty"`
	Started     time.Time `json:"started"`
	Finished    time.Time `json:"finished"`
}

// maxFile bounds what is read of a request or result; real ones are a few hundred bytes.
const maxFile = 16 << 10

var idRE = regexp.MustCompile(`^[0-9a-f]{16}$`)

func newID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b) // crypto/rand.Read does not fail
	return hex.EncodeToString(b)
}

// ParseRequest decodes a request strictly: the installer runs as root and the file
// comes from the unprivileged daemon, so every field is checked.
func ParseRequest(data []byte) (Request, error) {
	var r Request
	if err := decodeStrict(data, &r); err != nil {
		return Request{}, fmt.Errorf("selfupdate: request: %w", err)
	}
	switch {
	case !idRE.MatchString(r.ID):
		return Request{}, fmt.Errorf("selfupdate: request: id: want 16 hex digits, got %q", r.ID)
	case !audit.ValidActor(r.RequestedBy):
		return Request{}, fmt.Errorf("selfupdate: request: requested_by: not a user name: %q", r.RequestedBy)
	case r.RequestedAt.IsZero():
		return Request{}, errors.New("selfupdate: request: requested_at: missing")
	}
	switch r.Action {
	case ActionInstall:
		if err := abupdate.CheckVersion(r.Version); err != nil {
			return Request{}, fmt.Errorf("selfupdate: request: version: %w", err)
		}
	case ActionRollback:
		if r.Version != "" {
			return Request{}, errors.New("selfupdate: request: version: only for install")
		}
	default:
		return Request{}, fmt.Errorf("selfupdate: request: action: want install or rollback, got %q", r.Action)
	}
	return r, nil
}

// ParseResult decodes a result the installer wrote.
func ParseResult(data []byte) (Result, error) {
	var r Result
	if err := decodeStrict(data, &r); err != nil {
		return Result{}, fmt.Errorf("selfupdate: result: %w", err)
	}
	if !idRE.MatchString(r.ID) {
		return Result{}, fmt.Errorf("selfupdate: result: id: want 16 hex digits, got %q", r.ID)
	}
	return r, nil
}

func decodeStrict(data []byte, v any) error {
	if len(data) > maxFile {
		return fmt.Errorf("%d bytes, want at most %d", len(data), maxFile)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("data after the JSON object")
	}
	return nil
}

// readFile reads at most maxFile+1 bytes of path, so that an oversized file is reported
// rather than read whole.
func readFile(path string) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, maxFile+1))
}

// writeFile writes v as JSON to dir/name, atomically.
func writeFile(dir, name string, v any) error {
	data, err := encode(v)
	if err != nil {
		return err
	}
	return atomicfile.Write(filepath.Join(dir, name), data, 0o600)
}

// encode is the JSON of a request or result file.
func encode(v any) ([]byte, error) {
	data, err := json.MarshalIndent(v, "", "  ")
	return append(data, '\n'), err
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only plain structs are marshalled
	}
	return b
}
