package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"text/template"
	"unicode/utf8"
)

// maxLogTail is how much of an installer's output the agent keeps and reports (the
// appliance keeps at most this much too).
const maxLogTail = 64 << 10

// commandData is what install and check templates see.
type commandData struct {
	File       string   // the first target's downloaded file
	Files      []string // every target's file, in the offer's order
	Repo       string
	Target     string // the first target's TUF path
	Release    string
	Version    string
	Deployment int64
}

// result is how a command ended.
type result struct {
	ExitCode int // -1 when it did not start or was killed
	LogTail  string
	Err      error // nil when it exited 0
}

// expand fills the local install or check command's templates with d.
func expand(argv []string, d commandData) ([]string, error) {
	args := make([]string, len(argv))
	for i, a := range argv {
		t, err := template.New("").Option("missingkey=error").Parse(a)
		if err != nil {
			return nil, fmt.Errorf("command argument %d: %w", i, err)
		}
		var b bytes.Buffer
		if err := t.Execute(&b, d); err != nil {
			return nil, fmt.Errorf("command argument %d: %w", i, err)
		}
		args[i] = b.String()
	}
	return args, nil
}

// run runs args without a shell for at most the timeout in ctx, with d in its
// environment and stdout and stderr interleaved into a tail of the last maxLogTail
// bytes.
func run(ctx context.Context, args []string, d commandData, dir string) result {
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"PATCHGATE_FILE="+d.File, "PATCHGATE_REPO="+d.Repo, "PATCHGATE_TARGET="+d.Target,
		"PATCHGATE_RELEASE="+d.Release, "PATCHGATE_VERSION="+d.Version,
		"PATCHGATE_DEPLOYMENT="+strconv.FormatInt(d.Deployment, 10))
	tail := &tailBuffer{max: maxLogTail}
	cmd.Stdout, cmd.Stderr = tail, tail
	err := cmd.Run()
	r := result{ExitCode: 0, LogTail: tail.String(), Err: err}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.ExitCode = ee.ExitCode() // -1 when killed by a signal
		if ctx.Err() != nil {
			r.Err = fmt.Errorf("%s: stopped after the install timeout: %w", args[0], ctx.Err())
		}
	default:
		r.ExitCode = -1
		r.Err = fmt.Errorf("%s: %w", args[0], err)
	}
	return r
}

// tailBuffer keeps the last max bytes written to it. It is safe for concurrent use
// (a command's stdout and stderr are copied by two goroutines).
type tailBuffer struct {
	mu      sync.Mutex
	max     int
	buf     []byte
	dropped bool
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
		t.dropped = true
	}
	return len(p), nil
}

// String returns the tail, starting at a whole UTF-8 character.
func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	b := t.buf
	if t.dropped {
		for i := 0; i < utf8.UTFMax && len(b) > 0 && !utf8.RuneStart(b[0]); i++ {
			b = b[1:]
		}
	}
	return string(b)
}
