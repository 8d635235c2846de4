// Package conftest runs the table tests of a config section's Validate: each case edits
// a valid section and names the problem it should raise.
package conftest

import (
	"strings"
	"testing"

	"github.com/patchgate/patchgate/conf"
)

// Case is one edit of a valid section and a text its problems should hold ("" for no
// problem at all).
type Case[S any] struct {
	Name string
	Edit func(*S)
	Want string
}

// Validator is a pointer to a section type with the usual Validate method.
type Validator[S any] interface {
	*S
	Validate(key string, ps *conf.Problems)
}

// Problems validates s under key and returns its problems, one "key: msg" a line.
func Problems[S any, P Validator[S]](key string, s *S) string {
	var ps conf.Problems
	P(s).Validate(key, &ps)
	return (&conf.Error{Problems: ps}).Error()
}

// Run runs each case as a subtest on a fresh good() section validated under key, and
// wants no problem when Want is "", else a problem line holding Want. check, when set,
// also sees every case's problem lines (e.g. to refuse a printed secret).
func Run[S any, P Validator[S]](t *testing.T, key string, good func() S, cases []Case[S], check func(t *testing.T, got string)) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.Name, func(t *testing.T) {
			s := good()
			tc.Edit(&s)
			got := Problems[S, P](key, &s)
			switch {
			case tc.Want == "" && got != "":
				t.Errorf("Validate: %q, want no problem", got)
			case !strings.Contains(got, tc.Want):
				t.Errorf("Validate: %q, want %q", got, tc.Want)
			}
			if check != nil {
				check(t, got)
			}
		})
	}
}
