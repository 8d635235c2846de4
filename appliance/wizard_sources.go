package appliance

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/patchgate/patchgate/appliance/rollout"
	"github.com/patchgate/patchgate/appliance/supply"
	"github.com/patchgate/patchgate/appliance/web"
	"github.com/patchgate/patchgate/conf"
)

// The wizard's repositories/sources and maintenance-window steps (the others are in
// wizard.go). Like the others they edit their keys in the YAML tree, and the result is
// validated by config.Load before it is written.

// wizardWindowRows is how many window rows the form offers at least.
const wizardWindowRows = 2

// wizardPreviewOpenings is how many next openings the window step shows per window.
const wizardPreviewOpenings = 5

// upsertByName replaces the entry of list named name with set applied to it, or appends
// a new one; the entry's other keys stay.
func upsertByName(list []map[string]any, name string, set func(map[string]any)) []map[string]any {
	for _, e := range list {
		if str(e["name"]) == name {
			set(e)
			return list
		}
	}
	e := map[string]any{"name": name}
	set(e)
	return append(list, e)
}

// setOrDelete sets m[k] to v, or deletes it when v is empty.
func setOrDelete(m map[string]any, k, v string) {
	if v == "" {
		delete(m, k)
	} else {
		m[k] = v
	}
}

func sourcesForm(d *configDoc) ([]wizardGroup, error) {
	var srcs, repos []map[string]any
	if err := d.get(&srcs, "sources"); err != nil {
		return nil, err
	}
	if err := d.get(&repos, "tuf", "repositories"); err != nil {
		return nil, err
	}
	// The form shows the first url source and the first repository; others are edited
	// in the file (and stay).
	var src, repo map[string]any
	si, ri := len(srcs), len(repos)
	for i, s := range srcs {
		if str(s["kind"]) == supply.KindURL {
			src, si = s, i
			break
		}
	}
	if len(repos) > 0 {
		repo, ri = repos[0], 0
	}
	sk, rk := conf.Index("sources", si), conf.Index("tuf.repositories", ri)
	srcField, tufField := textFields(src, sk, "src."), textFields(repo, rk, "tuf.")
	return []wizardGroup{
		{Title: "A vendor file (sources, kind url)", Fields: []wizardField{
			srcField("name", "Name", "e.g. label-printer-fw; empty: no source"),
			srcField("url", "URL", "the file, e.g. https://vendor.example/fw-4.2.bin"),
			srcField("sha256", "SHA-256", "64 hex digits, from the vendor"),
			srcField("checksums_url", "or a checksums URL", "a SHA256SUMS file; the files it lists are next to it"),
			{Key: sk},
		}},
		{Title: "An upstream TUF repository (tuf.repositories)", Fields: []wizardField{
			tufField("name", "Name", "e.g. vendor; empty: no repository"),
			tufField("metadata_url", "Metadata URL", "e.g. https://updates.vendor.example/metadata"),
			tufField("targets_url", "Targets URL", "empty: the metadata URL"),
			tufField("root", "Pinned root.json", "the absolute path of a file on the appliance, installed out of band, e.g. /etc/patchgate/vendor-root.json"),
			{Key: rk},
		}},
	}, nil
}

// sourcesApply adds or changes the url source and the TUF repository named in the form;
// other sources and repositories stay.
func sourcesApply(d *configDoc, in func(string) string) error {
	if name := in("src.name"); name != "" {
		var srcs []map[string]any
		if err := d.get(&srcs, "sources"); err != nil {
			return err
		}
		srcs = upsertByName(srcs, name, func(s map[string]any) {
			s["kind"] = supply.KindURL
			for _, k := range []string{"url", "sha256", "checksums_url"} {
				setOrDelete(s, k, in("src."+k))
			}
		})
		if err := d.set(srcs, "sources"); err != nil {
			return err
		}
	} else if in("src.url") != "" {
		return errors.New("sources: a vendor file needs a name")
	}
	if name := in("tuf.name"); name != "" {
		var repos []map[string]any
		if err := d.get(&repos, "tuf", "repositories"); err != nil {
			return err
		}
		targets := in("tuf.targets_url")
		if targets == "" {
			targets = in("tuf.metadata_url")
		}
		repos = upsertByName(repos, name, func(r map[string]any) {
			setOrDelete(r, "metadata_url", in("tuf.metadata_url"))
			setOrDelete(r, "targets_url", targets)
			setOrDelete(r, "root", in("tuf.root"))
		})
		return d.set(repos, "tuf", "repositories")
	} else if in("tuf.metadata_url") != "" {
		return errors.New("tuf: a repository needs a name")
	}
	return nil
}

// fileWindows are the windows the file gives: its rollout.windows, or the defaults when
// it has none.
func fileWindows(d *configDoc) ([]map[string]any, error) {
	if d.lookup("rollout", "windows") == nil {
		var out []map[string]any
		for _, w := range rollout.DefaultSection().Windows {
			out = append(out, map[string]any{"name": w.Name, "cron": w.Cron, "duration": w.Duration.D().String()})
		}
		return out, nil
	}
	var ws []map[string]any
	err := d.get(&ws, "rollout", "windows")
	return ws, err
}

// siteZone is rollout.zone from the file (the default's when it has none).
func siteZone(d *configDoc) (string, error) {
	zone := rollout.DefaultSection().Zone
	err := d.get(&zone, "rollout", "zone")
	return zone, err
}

func windowForm(d *configDoc) ([]wizardGroup, error) {
	ws, err := fileWindows(d)
	if err != nil {
		return nil, err
	}
	zone, err := siteZone(d)
	if err != nil {
		return nil, err
	}
	out := []wizardGroup{{Title: "Site", Fields: []wizardField{
		{Name: "zone", Label: "Time zone", Type: "text", Value: zone, Key: "rollout.zone", Help: "IANA name, e.g. America/New_York"},
	}}}
	return append(out, rowGroups(ws, wizardWindowRows, "rollout.windows", "win", "Window", func(w map[string]any, k, p string) []wizardField {
		f := textFields(w, k, p)
		return []wizardField{
			f("name", "Name", "e.g. nightly"),
			f("cron", "Opens (cron)", "e.g. 0 22 * * * (22:00 daily), 0 2 * * 6 (Saturdays 02:00)"),
			f("duration", "For", "e.g. 6h"),
			f("ring", "Ring", "empty: every ring"),
			{Key: k},
		}
	})...), nil
}

// windowApply rewrites rollout.zone and rollout.windows from the rows; keys the form does
// not show (segment) stay with their row.
func windowApply(d *configDoc, in func(string) string) error {
	if z := in("zone"); z != "" {
		if err := d.set(z, "rollout", "zone"); err != nil {
			return err
		}
	}
	old, err := fileWindows(d)
	if err != nil {
		return err
	}
	out := []map[string]any{}
	for i := range max(wizardWindowRows, len(old)+1) {
		p := "win" + strconv.Itoa(i) + "."
		if in(p+"name") == "" && in(p+"cron") == "" && in(p+"duration") == "" {
			continue
		}
		w := map[string]any{}
		if i < len(old) {
			w = old[i]
		}
		w["name"], w["cron"], w["duration"] = in(p+"name"), in(p+"cron"), in(p+"duration")
		setOrDelete(w, "ring", in(p+"ring"))
		out = append(out, w)
	}
	return d.set(out, "rollout", "windows")
}

// windows decodes the file's windows as the rollout section does.
func windows(d *configDoc) ([]rollout.Window, error) {
	var seeds []rollout.SeedWindow
	if d.lookup("rollout", "windows") == nil {
		seeds = rollout.DefaultSection().Windows
	} else if err := d.get(&seeds, "rollout", "windows"); err != nil {
		return nil, err
	}
	zone, err := siteZone(d)
	if err != nil {
		return nil, err
	}
	out := make([]rollout.Window, len(seeds))
	for i, s := range seeds {
		out[i] = rollout.Window{Name: s.Name, Cron: s.Cron, Duration: rollout.Duration(s.Duration.D()), Zone: zone, Ring: s.Ring, Segment: s.Segment}
	}
	return out, nil
}

// windowPreview puts each window's next openings under its row, or why it has none.
func windowPreview(d *configDoc, groups []wizardGroup, now time.Time) {
	ws, err := windows(d)
	if err != nil {
		return // the form shows the file's problem
	}
	for i, w := range ws {
		if i+1 >= len(groups) {
			return
		}
		g := &groups[i+1]
		s, err := w.Compile()
		if err != nil {
			g.Notes = append(g.Notes, "no preview: "+err.Error())
			continue
		}
		for _, o := range s.Next(now, wizardPreviewOpenings) {
			g.Notes = append(g.Notes, fmt.Sprintf("opens %s (%s), closes %s", o.Start.Format("Mon 2 Jan 15:04 MST"), web.Rel(now, o.Start), o.End.Format("Mon 2 Jan 15:04")))
		}
	}
}

// windowSaved adds the windows the running site lacks (by name) to its store: the file's
// windows only seed an empty one.
func windowSaved(ctx context.Context, s *System, actor string, d *configDoc) error {
	if s.rollout == nil {
		return nil
	}
	ws, err := windows(d)
	if err != nil {
		return err
	}
	have, err := s.rollout.Windows(ctx)
	if err != nil {
		return err
	}
	names := map[string]bool{}
	for _, w := range have {
		names[w.Name] = true
	}
	for _, w := range ws {
		if names[w.Name] {
			continue
		}
		if _, err := s.rollout.AddWindow(ctx, actor, w); err != nil {
			return fmt.Errorf("wizard: window %q: %w", w.Name, err)
		}
	}
	return nil
}
