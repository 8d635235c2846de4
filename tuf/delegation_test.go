package tuf_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/patchgate/patchgate/tuf"
	"github.com/patchgate/patchgate/tuf/tuftest"
)

// delegation is one edge of a test graph: delegator → role.
type delegation struct {
	from, role  string
	paths       []string // nil: "*"
	terminating bool
}

// buildGraph delegates every edge in order and publishes.
func buildGraph(e *mirrorEnv, edges []delegation) {
	for _, d := range edges {
		paths := d.paths
		if paths == nil {
			paths = []string{"*"}
		}
		e.repo.DelegateRole(d.from, metadata.DelegatedRole{Name: d.role, Paths: paths, Terminating: d.terminating})
	}
}

// delegatedFetches returns the delegated roles fetched since request index
// from, in order (top-level metadata left out).
func delegatedFetches(e *mirrorEnv, from int) []string {
	var out []string
	for _, p := range e.repo.Requests()[from:] {
		name, ok := strings.CutPrefix(p, "/metadata/")
		if !ok {
			continue
		}
		n, err := tuf.ParseMetadataName(name)
		if err != nil || n.Role == "root" || n.Role == "timestamp" || n.Role == "snapshot" || n.Role == "targets" {
			continue
		}
		out = append(out, n.Role)
	}
	return out
}

func refreshed(t *testing.T, e *mirrorEnv) *tuf.Mirror {
	t.Helper()
	m := e.mirror(t)
	if err := m.Refresh(context.Background()); err != nil {
		t.Fatalf("Refresh: %v", err)
	}
	return m
}

// TestMirrorGraphTraversal follows the conformance scenario
// test_graph_traversal: looking up a path no role lists visits the
// delegations in pre-order depth-first order, each fetched once and only
// when the walk reaches it (a refresh fetches none).
func TestMirrorGraphTraversal(t *testing.T) {
	for _, tc := range []struct {
		name  string
		edges []delegation
		want  []string
	}{
		{"basic", []delegation{{from: "targets", role: "A"}}, []string{"A"}},
		{"single level", []delegation{{from: "targets", role: "A"}, {from: "targets", role: "B"}}, []string{"A", "B"}},
		{"two levels", []delegation{{from: "targets", role: "A"}, {from: "targets", role: "B"}, {from: "B", role: "C"}}, []string{"A", "B", "C"}},
		{"depth first", []delegation{{from: "targets", role: "A"}, {from: "targets", role: "B"}, {from: "A", role: "C"}, {from: "A", role: "D"}},
			[]string{"A", "C", "D", "B"}},
		{"three levels depth first", []delegation{{from: "targets", role: "A"}, {from: "targets", role: "B"}, {from: "A", role: "C"}, {from: "C", role: "D"}},
			[]string{"A", "C", "D", "B"}},
		{"terminating ends the search after its subtree", []delegation{{from: "targets", role: "A"}, {from: "targets", role: "B"},
			{from: "A", role: "C", terminating: true}, {from: "A", role: "D"}}, []string{"A", "C"}},
		{"terminating keeps its own descendants", []delegation{{from: "targets", role: "A"}, {from: "targets", role: "B"},
			{from: "A", role: "C", terminating: true}, {from: "C", role: "D"}}, []string{"A", "C", "D"}},
		{"unmatched paths skip a branch", []delegation{{from: "targets", role: "A", paths: []string{"*.py"}}, {from: "targets", role: "B"},
			{from: "A", role: "C"}}, []string{"B"}},
		{"unmatched paths skip a subtree", []delegation{{from: "targets", role: "A"}, {from: "targets", role: "B"},
			{from: "A", role: "C", paths: []string{"*.py"}}, {from: "C", role: "D"}}, []string{"A", "B"}},
		{"cycle", []delegation{{from: "targets", role: "A"}, {from: "targets", role: "B"}, {from: "B", role: "C"},
			{from: "C", role: "D"}, {from: "D", role: "B"}}, []string{"A", "B", "C", "D"}},
		{"two delegators of a third", []delegation{{from: "targets", role: "A"}, {from: "targets", role: "B"},
			{from: "B", role: "C"}, {from: "A", role: "C"}}, []string{"A", "C", "B"}},
		{"two delegators of a third, one unmatched", []delegation{{from: "targets", role: "A"}, {from: "targets", role: "B"},
			{from: "B", role: "C"}, {from: "A", role: "C", paths: []string{"*.py"}}}, []string{"A", "B", "C"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newMirrorEnv(t)
			buildGraph(e, tc.edges)
			e.repo.Publish()
			m := refreshed(t, e)
			if got := delegatedFetches(e, 0); len(got) != 0 {
				t.Errorf("Refresh fetched delegated roles %v, want none (resolution is lazy)", got)
			}
			from := len(e.repo.Requests())
			if _, err := m.Target(context.Background(), "missingpath"); !errors.Is(err, tuf.ErrNotFound) {
				t.Fatalf("Target(missingpath) err = %v, want ErrNotFound", err)
			}
			if diff := cmp.Diff(tc.want, delegatedFetches(e, from)); diff != "" {
				t.Errorf("roles fetched (-want +got):\n%s", diff)
			}
			// A second walk fetches nothing: the verified roles are kept.
			from = len(e.repo.Requests())
			if _, err := m.Target(context.Background(), "missingpath"); !errors.Is(err, tuf.ErrNotFound) {
				t.Fatalf("second Target(missingpath) err = %v, want ErrNotFound", err)
			}
			if got := delegatedFetches(e, from); len(got) != 0 {
				t.Errorf("second walk fetched %v, want nothing", got)
			}
		})
	}
}

// TestMirrorTargetSearch follows the conformance scenario
// test_targetfile_search:
//
//	          targets
//	*.doc, *.md /   \ releases/*/*
//	           A     B
//	releases/x/* /   \ releases/y/*.zip
//	            C     D
func TestMirrorTargetSearch(t *testing.T) {
	e := newMirrorEnv(t)
	buildGraph(e, []delegation{
		{from: "targets", role: "A", paths: []string{"*.doc", "*.md"}},
		{from: "targets", role: "B", paths: []string{"releases/*/*"}},
		{from: "B", role: "C", paths: []string{"releases/x/*"}},
		{from: "B", role: "D", paths: []string{"releases/y/*.zip"}},
	})
	e.repo.AddTargetContent("targets", "targetfile", tuftest.Bytes("targetfile content"), nil)
	e.repo.AddTargetContent("A", "README.md", tuftest.Bytes("README by A"), nil)
	e.repo.AddTargetContent("C", "releases/x/x_v1", tuftest.Bytes("x release by C"), nil)
	e.repo.AddTargetContent("D", "releases/y/y_v1.zip", tuftest.Bytes("y release by D"), nil)
	e.repo.AddTargetContent("D", "releases/z/z_v1.zip", tuftest.Bytes("z release by D"), nil)
	e.repo.Publish()
	for _, tc := range []struct {
		name, path string
		role       string // "": not found
		visited    []string
	}{
		{"top level", "targetfile", "targets", nil},
		{"wildcard", "README.md", "A", []string{"A"}},
		{"separators x", "releases/x/x_v1", "C", []string{"B", "C"}},
		{"separators y", "releases/y/y_v1.zip", "D", []string{"B", "D"}},
		{"not delegated by every role on the chain", "releases/z/z_v1.zip", "", []string{"B"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e.dir = t.TempDir() // each case starts cold
			m := refreshed(t, e)
			from := len(e.repo.Requests())
			got, err := m.Target(context.Background(), tc.path)
			switch {
			case tc.role == "" && !errors.Is(err, tuf.ErrNotFound):
				t.Errorf("Target(%q) = %+v, %v; want ErrNotFound", tc.path, got, err)
			case tc.role != "" && (err != nil || got.Role != tc.role):
				t.Errorf("Target(%q) = %+v, %v; want it from role %s", tc.path, got, err, tc.role)
			}
			if diff := cmp.Diff(tc.visited, delegatedFetches(e, from)); diff != "" {
				t.Errorf("roles fetched (-want +got):\n%s", diff)
			}
		})
	}
}

// TestMirrorHashPrefixAndLimit covers path_hash_prefixes (hex of the path's
// sha256, as the specification says) and the bound of 32 roles a lookup
// visits.
func TestMirrorHashPrefixAndLimit(t *testing.T) {
	e := newMirrorEnv(t)
	sum := sha256.Sum256([]byte("bins/f.bin"))
	prefix := hex.EncodeToString(sum[:])[:2]
	other := "zz" // never a hex prefix
	e.repo.DelegateRole("targets", metadata.DelegatedRole{Name: "bin-other", PathHashPrefixes: []string{other}})
	e.repo.DelegateRole("targets", metadata.DelegatedRole{Name: "bin-" + prefix, PathHashPrefixes: []string{prefix}})
	e.repo.AddTargetContent("bin-"+prefix, "bins/f.bin", tuftest.Bytes("binned"), nil)
	// A chain of 40 roles under "deep/*": the target at its end is past the
	// limit.
	parent := "targets"
	for i := range 40 {
		name := fmt.Sprintf("deep%02d", i)
		e.repo.DelegateRole(parent, metadata.DelegatedRole{Name: name, Paths: []string{"deep/*"}})
		parent = name
	}
	e.repo.AddTargetContent(parent, "deep/end.bin", tuftest.Bytes("too deep"), nil)
	e.repo.Publish()
	m := refreshed(t, e)

	from := len(e.repo.Requests())
	got, err := m.Target(context.Background(), "bins/f.bin")
	if err != nil || got.Role != "bin-"+prefix {
		t.Fatalf("Target(bins/f.bin) = %+v, %v; want it from bin-%s", got, err, prefix)
	}
	if diff := cmp.Diff([]string{"bin-" + prefix}, delegatedFetches(e, from)); diff != "" {
		t.Errorf("roles fetched (-want +got):\n%s", diff)
	}

	from = len(e.repo.Requests())
	if got, err := m.Target(context.Background(), "deep/end.bin"); !errors.Is(err, tuf.ErrNotFound) {
		t.Errorf("Target(deep/end.bin) = %+v, %v; want ErrNotFound past 32 roles", got, err)
	}
	// The top-level role counts as one of the 32 visits.
	if n := len(delegatedFetches(e, from)); n != 31 {
		t.Errorf("the lookup fetched %d delegated roles, want 31", n)
	}
}

// TestMirrorDelegatorOnPath: two delegators name the same role with
// different keys. The role verifies under the one that trusts its key, and
// is refused under the other, whatever was looked up first.
func TestMirrorDelegatorOnPath(t *testing.T) {
	for _, tc := range []struct {
		name  string
		order []string
	}{
		{"trusted path first", []string{"a/y.bin", "b/x.bin"}},
		{"untrusted path first", []string{"b/x.bin", "a/y.bin"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newMirrorEnv(t)
			e.repo.Delegate("targets", "A", []string{"a/*"}, false)
			e.repo.Delegate("targets", "B", []string{"b/*"}, false)
			// A trusts shared's own key; B names shared with a key that never signs it.
			e.repo.DelegateRole("A", metadata.DelegatedRole{Name: "shared", Paths: []string{"a/*", "b/*"}})
			e.repo.DelegateRole("B", metadata.DelegatedRole{Name: "shared", Paths: []string{"b/*"}}, tuftest.NewKey())
			e.repo.AddTargetContent("shared", "a/y.bin", tuftest.Bytes("through A"), nil)
			e.repo.AddTargetContent("shared", "b/x.bin", tuftest.Bytes("through B"), nil)
			e.repo.Publish()
			m := refreshed(t, e)
			for _, p := range tc.order {
				got, err := m.Target(context.Background(), p)
				if p == "a/y.bin" {
					if err != nil || got.Role != "shared" {
						t.Errorf("Target(%s) = %+v, %v; want it from shared through A", p, got, err)
					}
					continue
				}
				if !errors.Is(err, tuf.ErrRoleUnavailable) {
					t.Errorf("Target(%s) = %+v, %v; want ErrRoleUnavailable (B does not trust shared's key)", p, got, err)
				}
			}
			// The metadata endpoint serves the role: it verified under A.
			if _, err := m.Metadata(context.Background(), "shared.json"); err != nil {
				t.Errorf("Metadata(shared.json): %v", err)
			}
		})
	}
}

// TestMirrorDelegatedMetadataLazily: a client asking for a delegated role's
// metadata before any lookup needed it gets it, verified on a path first.
func TestMirrorDelegatedMetadataLazily(t *testing.T) {
	e := newMirrorEnv(t)
	e.repo.Delegate("targets", "vendor", []string{"vendor/*"}, false)
	e.repo.Delegate("vendor", "vendor-fw", []string{"vendor/*"}, false)
	e.repo.Publish()
	m := refreshed(t, e)
	for _, name := range []string{"vendor-fw.json", "1.vendor-fw.json", "vendor.json"} {
		data, err := m.Metadata(context.Background(), name)
		if err != nil {
			t.Fatalf("Metadata(%s): %v", name, err)
		}
		if want := e.repo.Published(strings.TrimSuffix(strings.TrimPrefix(name, "1."), ".json"), 1); string(data) != string(want) {
			t.Errorf("Metadata(%s) differs from the upstream bytes", name)
		}
	}
	if _, err := m.Metadata(context.Background(), "2.vendor-fw.json"); !errors.Is(err, tuf.ErrNotFound) {
		t.Errorf("Metadata(2.vendor-fw.json) err = %v, want ErrNotFound", err)
	}
	if _, err := m.Metadata(context.Background(), "nobody.json"); !errors.Is(err, tuf.ErrNotFound) {
		t.Errorf("Metadata(nobody.json) err = %v, want ErrNotFound", err)
	}
}
