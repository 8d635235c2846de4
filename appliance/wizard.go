package appliance

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/patchgate/patchgate/appliance/audit"
	"github.com/patchgate/patchgate/appliance/auth"
	"github.com/patchgate/patchgate/appliance/config"
	"github.com/patchgate/patchgate/atomicfile"
	"github.com/patchgate/patchgate/conf"
)

// The first-run wizard: after the setup token made the first admin (who enrolled a
// second factor to get here), a few server-rendered forms (no JavaScript) for the device
// segments, the DNS upstreams, the repositories and sources, the maintenance window, the
// backup target and the notification recipients. Each
// step is skippable. A step changes its keys in the config file's YAML (other keys and
// the comments stay), validates the result with the same validation as check-config and
// the daemon's start, and only then writes the file atomically; problems are shown next
// to their fields. Each write is audited (config.wizard, the file's digests before and
// after). The last step marks the wizard done and reloads.

// wizardField is one input of a step. Key is the config key it edits: a problem at that
// key (or inside it) is shown next to it.
type wizardField struct {
	Name, Label, Type, Value, Help, Key string
	Problems                            []string
}

// wizardGroup is a set of fields shown together (one segment).
type wizardGroup struct {
	Title  string
	Fields []wizardField
	Notes  []string // shown under the fields (a window's next openings)
}

// wizardStep is one page of the wizard.
type wizardStep struct {
	ID, Title, Intro string
	// form returns the step's fields with the file's current values.
	form func(d *configDoc) ([]wizardGroup, error)
	// apply puts the submitted values into the file (nil: nothing to write).
	apply func(d *configDoc, in func(string) string) error
	// saved, when set, runs after the file was written (the window step adds the
	// windows a running store lacks).
	saved func(ctx context.Context, s *System, actor string, d *configDoc) error
	// preview, when set, annotates the form's groups (the window step's next openings).
	preview func(d *configDoc, groups []wizardGroup, now time.Time)
}

// wizardView is what wizard.html gets.
type wizardView struct {
	Steps    []wizardStep
	Step     *wizardStep
	Next     string
	Groups   []wizardGroup
	Problems []string // the step's problems at no field, and those elsewhere in the file
	Saved    string
	Done     bool
	File     string
}

const wizardSegmentRows = 4

var wizardSteps = []wizardStep{
	{ID: "segments", Title: "Device segments",
		Intro: "The networks the appliance serves: its own address on each and the client subnets behind it. Leave a row empty to remove it.",
		form:  segmentsForm, apply: segmentsApply},
	{ID: "dns", Title: "DNS upstreams",
		Intro: "Where the allowlisting resolver forwards allowed names, tried in order. One per line: ADDRESS:PORT PROTOCOL [TLS-NAME], protocol udp, tcp or tls.",
		form:  dnsForm, apply: dnsApply},
	{ID: "sources", Title: "Repositories and sources",
		Intro: "Where updates come from: a vendor file checked by its pinned SHA-256 or a checksums file (sources), and an upstream TUF repository with its pinned root.json (tuf.repositories). Other kinds (openpgp, debian, import) are set in the file.",
		form:  sourcesForm, apply: sourcesApply},
	{ID: "window", Title: "Maintenance window",
		Intro: "When devices may install: a cron expression (minute hour day month weekday) in the site's zone and how long each opening lasts. Leave a row empty to remove it. Windows the running site lacks are added to it; changed ones are edited on the windows page.",
		form:  windowForm, apply: windowApply, saved: windowSaved, preview: windowPreview},
	{ID: "mfa", Title: "Your second factor",
		Intro: "Every admin login asks for your TOTP code: you enrolled it before reaching this page. Keep the recovery codes offline; new ones are on your account page."},
	{ID: "backup", Title: "Backup target",
		Intro: "Encrypted backups of the database, the audit trail and the keys, to a local directory (a mounted disk or share). S3 targets are set in the file (backup.s3).",
		form:  backupForm, apply: backupApply},
	{ID: "notify", Title: "Notification recipients",
		Intro: "Email (through your SMTP relay, STARTTLS required) for approvals waiting, paused or failed rollouts, overdue devices, expiring metadata and exceptions, new devices, failed backups and overdue reviews.",
		form:  notifyForm, apply: notifyApply},
	{ID: "finish", Title: "Finish",
		Intro: "The config file now holds what you entered. Finishing reloads the appliance so the changes take effect (some, such as segments, need a restart: systemctl restart patchgate)."},
}

// step is the index of the request's {step}; an unknown one is answered 404.
func (w *wizard) step(rw http.ResponseWriter, r *http.Request) (int, bool) {
	id := r.PathValue("step")
	i := slices.IndexFunc(wizardSteps, func(s wizardStep) bool { return s.ID == id })
	if i < 0 {
		w.forms.Fail(rw, r, auth.Refuse(http.StatusNotFound, fmt.Sprintf("no wizard step %q", id)))
	}
	return i, i >= 0
}

// buildWizard mounts the wizard's pages (routes in auth.AdminRoutes: settings.manage)
// and its status panel.
func (s *System) buildWizard(context.Context) error {
	if s.auth == nil {
		return nil
	}
	w := &wizard{s: s, forms: s.auth.Forms()}
	s.admin.mux.HandleFunc("GET /wizard", w.overview)
	s.admin.mux.HandleFunc("GET /wizard/{step}", w.page)
	s.admin.mux.HandleFunc("POST /wizard/{step}", w.submit)
	s.AddPanel(panel{"wizard", "First-run wizard", func(context.Context) any { return map[string]any{"done": w.done()} }})
	return nil
}

type wizard struct {
	s     *System
	forms auth.Forms
}

func (w *wizard) marker() string { return w.s.cfg.State.Path("wizard-done") }

func (w *wizard) done() bool {
	_, err := os.Stat(w.marker())
	return err == nil
}

func (w *wizard) read() ([]byte, *configDoc, error) {
	path := w.s.opts.ConfigPath
	if path == "" {
		return nil, nil, auth.Refuse(http.StatusConflict, "the appliance runs without a config file: edit the YAML and start it with --config")
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("wizard: %w", err)
	}
	d, err := parseConfigDoc(data)
	if err != nil {
		return nil, nil, auth.Refuse(http.StatusConflict, err.Error())
	}
	return data, d, nil
}

func (w *wizard) overview(rw http.ResponseWriter, r *http.Request) {
	w.forms.Render(rw, r, "wizard.html", wizardView{Steps: wizardSteps, Done: w.done(), File: w.s.opts.ConfigPath})
}

func (w *wizard) view(i int, d *configDoc) (wizardView, error) {
	st := &wizardSteps[i]
	v := wizardView{Steps: wizardSteps, Step: st, Done: w.done(), File: w.s.opts.ConfigPath}
	if i+1 < len(wizardSteps) {
		v.Next = wizardSteps[i+1].ID
	}
	if st.form != nil {
		var err error
		if v.Groups, err = st.form(d); err != nil {
			return v, auth.Refuse(http.StatusConflict, "config file: "+err.Error())
		}
	}
	if st.preview != nil {
		st.preview(d, v.Groups, w.s.clock.Now())
	}
	return v, nil
}

func (w *wizard) page(rw http.ResponseWriter, r *http.Request) {
	i, ok := w.step(rw, r)
	if !ok {
		return
	}
	_, d, err := w.read()
	var v wizardView
	if err == nil {
		v, err = w.view(i, d)
	}
	if err != nil {
		w.forms.Fail(rw, r, err)
		return
	}
	if r.URL.Query().Get("saved") != "" {
		v.Saved = "Saved to " + filepath.Base(v.File) + "."
	}
	w.forms.Render(rw, r, "wizard.html", v)
}

// submit applies a step: the file changed in memory, validated, written atomically,
// audited; then on to the next step. With problems, the same form again with them.
func (w *wizard) submit(rw http.ResponseWriter, r *http.Request) {
	id := r.PathValue("step")
	i := slices.IndexFunc(wizardSteps, func(s wizardStep) bool { return s.ID == id })
	// The step's fields from a form or a JSON object (a key the step does not take is
	// refused by name, an unknown step's too).
	fields := []string{"skip"}
	if i >= 0 && wizardSteps[i].form != nil {
		if _, d, err := w.read(); err == nil {
			groups, _ := wizardSteps[i].form(d)
			for _, g := range groups {
				for _, f := range g.Fields {
					if f.Name != "" {
						fields = append(fields, f.Name)
					}
				}
			}
		}
	}
	in, err := w.forms.Input(r, fields...)
	if err != nil {
		w.forms.Fail(rw, r, err)
		return
	}
	if i < 0 {
		w.forms.Fail(rw, r, auth.Refuse(http.StatusNotFound, fmt.Sprintf("no wizard step %q", id)))
		return
	}
	st := wizardSteps[i]
	actor, err := auth.Actor(r)
	if err != nil {
		w.forms.Fail(rw, r, auth.Refuse(http.StatusUnauthorized, err.Error()))
		return
	}
	next := "/wizard"
	if i+1 < len(wizardSteps) {
		next = "/wizard/" + wizardSteps[i+1].ID
	}
	if st.ID == "finish" {
		if err := w.finish(r.Context(), actor); err != nil {
			w.forms.Fail(rw, r, err)
			return
		}
		w.forms.Done(rw, r, nil, "/wizard?finished=1", http.StatusOK, map[string]string{"status": "finished"})
		return
	}
	if st.apply == nil || in["skip"] != "" {
		w.forms.Done(rw, r, nil, next, http.StatusOK, map[string]string{"status": "skipped", "next": next})
		return
	}
	old, d, err := w.read()
	if err != nil {
		w.forms.Fail(rw, r, err)
		return
	}
	if err := st.apply(d, func(k string) string { return strings.TrimSpace(in[k]) }); err != nil {
		w.forms.Fail(rw, r, auth.Refuse(http.StatusBadRequest, err.Error()))
		return
	}
	data, err := d.bytes()
	if err == nil {
		err = w.check(data)
	}
	var cerr *conf.Error
	if errors.As(err, &cerr) && strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		w.forms.Fail(rw, r, auth.Refuse(http.StatusBadRequest, cerr.Error()))
		return
	}
	if errors.As(err, &cerr) {
		v, verr := w.view(i, d)
		if verr != nil {
			w.forms.Fail(rw, r, verr)
			return
		}
		// The form shows what was entered (as read back from the changed file), with
		// each problem next to its field.
		v.Problems = placeProblems(v.Groups, cerr.Problems)
		w.forms.Render(rw, r, "wizard.html", v)
		return
	}
	if err != nil {
		w.forms.Fail(rw, r, err)
		return
	}
	if err := w.write(r.Context(), actor, st.ID, old, data); err != nil {
		w.forms.Fail(rw, r, err)
		return
	}
	if st.saved != nil {
		if err := st.saved(r.Context(), w.s, actor, d); err != nil {
			w.forms.Fail(rw, r, err)
			return
		}
	}
	w.forms.Done(rw, r, nil, next+"?saved="+st.ID, http.StatusOK, map[string]string{"status": "saved", "next": next})
}

// check validates data as check-config and the daemon's start do (config.Load: the
// sections, their references, and the files they name, relative to the config's
// directory), from a scratch copy beside the file.
func (w *wizard) check(data []byte) error {
	path := w.s.opts.ConfigPath
	scratch := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".wizard")
	if err := os.WriteFile(scratch, data, 0o600); err != nil {
		return fmt.Errorf("wizard: check config: %w", err)
	}
	defer os.Remove(scratch)
	_, err := config.Load(scratch)
	var cerr *conf.Error
	if errors.As(err, &cerr) {
		for i := range cerr.Problems {
			cerr.Problems[i].File = filepath.Base(path)
		}
	}
	return err
}

// write replaces the config file atomically and records it.
func (w *wizard) write(ctx context.Context, actor, step string, old, data []byte) error {
	perm := os.FileMode(0o640)
	if fi, err := os.Stat(w.s.opts.ConfigPath); err == nil {
		perm = fi.Mode().Perm()
	}
	if err := atomicfile.Write(w.s.opts.ConfigPath, data, perm); err != nil {
		return fmt.Errorf("wizard: write config: %w", err)
	}
	w.s.log.Info("wizard: config written", "step", step, "actor", actor, "config", w.s.opts.ConfigPath)
	if w.s.audit == nil {
		return nil
	}
	return w.s.audit.Record(ctx, audit.Entry{Actor: actor, Action: "config.wizard", Object: "config/" + step,
		Before: digest(old), After: digest(data), Details: map[string]string{"config": w.s.opts.ConfigPath}})
}

// finish marks the wizard done, records it and reloads what can be reloaded.
func (w *wizard) finish(ctx context.Context, actor string) error {
	if err := atomicfile.Write(w.marker(), []byte("done\n"), 0o600); err != nil {
		return fmt.Errorf("wizard: finish: %w", err)
	}
	if w.s.audit != nil {
		if err := w.s.audit.Record(ctx, audit.Entry{Actor: actor, Action: "config.wizard", Object: "config/finish"}); err != nil {
			return err
		}
	}
	w.s.reload(ctx)
	return nil
}

func digest(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// placeProblems puts each problem next to the field whose key is the most specific one
// it is at or inside, and returns the others (with their key) for the top of the form.
func placeProblems(groups []wizardGroup, ps conf.Problems) []string {
	var rest []string
	for _, p := range ps {
		var best *wizardField
		for gi := range groups {
			for fi := range groups[gi].Fields {
				f := &groups[gi].Fields[fi]
				if f.Key == "" {
					continue
				}
				if (p.Key == f.Key || strings.HasPrefix(p.Key, f.Key+".") || strings.HasPrefix(p.Key, f.Key+"[")) && (best == nil || len(f.Key) > len(best.Key)) {
					best = f
				}
			}
		}
		if best != nil {
			best.Problems = append(best.Problems, p.Msg)
		} else {
			rest = append(rest, p.String())
		}
	}
	return rest
}

// lines splits a textarea into its non-empty lines.
func lines(s string) []string {
	var out []string
	for l := range strings.SplitSeq(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// list splits a comma- or space-separated field.
func list(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\r' || r == '\t' })
}

// textFields makes the text fields of a map in the file at config key key, named in the
// form prefix+name: f(name, label, help) shows row[name] and reports the problems at
// key.name.
func textFields(row map[string]any, key, prefix string) func(name, label, help string) wizardField {
	return func(name, label, help string) wizardField {
		return wizardField{Name: prefix + name, Label: label, Type: "text", Value: str(row[name]), Key: key + "." + name, Help: help}
	}
}

func str(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case []any:
		var parts []string
		for _, e := range x {
			parts = append(parts, fmt.Sprint(e))
		}
		return strings.Join(parts, ", ")
	default:
		return fmt.Sprint(x)
	}
}

func segmentsForm(d *configDoc) ([]wizardGroup, error) {
	var segs []map[string]any
	if err := d.get(&segs, "segments"); err != nil {
		return nil, err
	}
	return rowGroups(segs, wizardSegmentRows, "segments", "seg", "Segment", func(s map[string]any, k, p string) []wizardField {
		f := textFields(s, k, p)
		return []wizardField{
			f("name", "Name", "lower-case, e.g. clinical"),
			f("interface", "Interface", "e.g. eth1"),
			f("vlan", "VLAN", "802.1Q id, or empty"),
			f("addresses", "Appliance addresses", "e.g. 10.20.0.1/24"),
			f("clients", "Client subnets", "e.g. 10.20.0.0/24"),
			{Key: k}, // problems about the segment as a whole
		}
	}), nil
}

// rowGroups is a form of rows (segments, windows): one group per row of the file and an
// empty one, at least min; fields gets the row (nil for an empty one), its config key
// and its input names' prefix.
func rowGroups(rows []map[string]any, min int, key, prefix, title string, fields func(row map[string]any, k, p string) []wizardField) []wizardGroup {
	var out []wizardGroup
	for i := range max(min, len(rows)+1) {
		var row map[string]any
		if i < len(rows) {
			row = rows[i]
		}
		out = append(out, wizardGroup{Title: fmt.Sprintf("%s %d", title, i+1),
			Fields: fields(row, conf.Index(key, i), prefix+strconv.Itoa(i)+".")})
	}
	return out
}

// segmentsApply rewrites the segments from the rows; keys the wizard does not show
// (services) stay with their row.
func segmentsApply(d *configDoc, in func(string) string) error {
	var old []map[string]any
	if err := d.get(&old, "segments"); err != nil {
		return err
	}
	out := []map[string]any{}
	for i := range max(wizardSegmentRows, len(old)+1) {
		p := "seg" + strconv.Itoa(i) + "."
		if in(p+"name") == "" && in(p+"interface") == "" && in(p+"addresses") == "" && in(p+"clients") == "" {
			continue
		}
		s := map[string]any{}
		if i < len(old) {
			s = old[i]
		}
		set := func(k string, v any, empty bool) {
			if empty {
				delete(s, k)
			} else {
				s[k] = v
			}
		}
		set("name", in(p+"name"), false)
		set("interface", in(p+"interface"), in(p+"interface") == "")
		if v := in(p + "vlan"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil {
				return fmt.Errorf("segment %d: vlan: want a number, got %q", i+1, v)
			}
			s["vlan"] = n
		} else {
			delete(s, "vlan")
		}
		set("addresses", list(in(p+"addresses")), in(p+"addresses") == "")
		set("clients", list(in(p+"clients")), in(p+"clients") == "")
		out = append(out, s)
	}
	return d.set(out, "segments")
}

func dnsForm(d *configDoc) ([]wizardGroup, error) {
	var ups []map[string]any
	if err := d.get(&ups, "resolver", "upstreams"); err != nil {
		return nil, err
	}
	var ls []string
	for _, u := range ups {
		l := strings.TrimSpace(str(u["address"]) + " " + str(u["protocol"]) + " " + str(u["tls_server_name"]))
		ls = append(ls, l)
	}
	return []wizardGroup{{Fields: []wizardField{{Name: "upstreams", Label: "Upstreams", Type: "textarea", Value: strings.Join(ls, "\n"),
		Key: "resolver.upstreams", Help: "e.g. 9.9.9.9:53 udp, or 9.9.9.9:853 tls dns.quad9.net; empty keeps the defaults"}}}}, nil
}

func dnsApply(d *configDoc, in func(string) string) error {
	ls := lines(in("upstreams"))
	if len(ls) == 0 {
		return nil // the defaults stay
	}
	var ups []map[string]any
	for _, l := range ls {
		f := strings.Fields(l)
		u := map[string]any{"address": f[0], "protocol": "udp"}
		if len(f) > 1 {
			u["protocol"] = f[1]
		}
		if len(f) > 2 {
			u["tls_server_name"] = f[2]
		}
		if len(f) > 3 {
			return fmt.Errorf("upstreams: %q: want ADDRESS:PORT PROTOCOL [TLS-NAME]", l)
		}
		ups = append(ups, u)
	}
	return d.set(ups, "resolver", "upstreams")
}

func backupForm(d *configDoc) ([]wizardGroup, error) {
	var dir, interval string
	var recipients []string
	for _, g := range []struct {
		v    any
		path []string
	}{{&dir, []string{"backup", "local", "dir"}}, {&interval, []string{"backup", "interval"}}, {&recipients, []string{"backup", "recipients"}}} {
		if err := d.get(g.v, g.path...); err != nil {
			return nil, err
		}
	}
	return []wizardGroup{{Fields: []wizardField{
		{Name: "dir", Label: "Local directory", Type: "text", Value: dir, Key: "backup.local", Help: "e.g. /mnt/backup/patchgate"},
		{Name: "recipients", Label: "Recipients (age public keys, one per line)", Type: "textarea", Value: strings.Join(recipients, "\n"), Key: "backup.recipients",
			Help: "made with age-keygen on a machine that keeps the private key offline"},
		{Name: "interval", Label: "Every", Type: "text", Value: interval, Key: "backup.interval", Help: "e.g. 24h"},
		{Key: "backup"},
	}}}, nil
}

func backupApply(d *configDoc, in func(string) string) error {
	if err := d.set(in("dir"), "backup", "local", "dir"); err != nil {
		return err
	}
	if err := d.set(lines(in("recipients")), "backup", "recipients"); err != nil {
		return err
	}
	if v := in("interval"); v != "" {
		return d.set(v, "backup", "interval")
	}
	return nil
}

func notifyForm(d *configDoc) ([]wizardGroup, error) {
	var enabled bool
	var host, from, user string
	var port int
	var rcpts []map[string]any
	for _, g := range []struct {
		v    any
		path []string
	}{{&enabled, []string{"notify", "enabled"}}, {&host, []string{"notify", "smtp", "host"}}, {&port, []string{"notify", "smtp", "port"}},
		{&from, []string{"notify", "smtp", "from"}}, {&user, []string{"notify", "smtp", "username"}}, {&rcpts, []string{"notify", "recipients"}}} {
		if err := d.get(g.v, g.path...); err != nil {
			return nil, err
		}
	}
	var emails []string
	for _, r := range rcpts {
		if e := str(r["email"]); e != "" {
			emails = append(emails, e)
		}
	}
	on, portS := "", ""
	if enabled {
		on = "on"
	}
	if port != 0 {
		portS = strconv.Itoa(port)
	}
	return []wizardGroup{{Fields: []wizardField{
		{Name: "enabled", Label: "Send notifications", Type: "checkbox", Value: on, Key: "notify.enabled"},
		{Name: "host", Label: "SMTP relay", Type: "text", Value: host, Key: "notify.smtp.host", Help: "e.g. smtp.example.com"},
		{Name: "port", Label: "Port", Type: "text", Value: portS, Key: "notify.smtp.port", Help: "587 unless told otherwise"},
		{Name: "from", Label: "From", Type: "text", Value: from, Key: "notify.smtp.from", Help: "e.g. patchgate@pharmacy.example"},
		{Name: "username", Label: "SMTP user", Type: "text", Value: user, Key: "notify.smtp.username", Help: "empty: no authentication"},
		{Name: "password", Label: "SMTP password", Type: "password", Key: "notify.smtp.password", Help: "empty keeps the one in the file"},
		{Name: "emails", Label: "Recipients (one email address per line, every kind of notice)", Type: "textarea", Value: strings.Join(emails, "\n"), Key: "notify.recipients"},
		{Key: "notify"},
	}}}, nil
}

// notifyApply sets the relay and the email recipients; webhook recipients stay.
func notifyApply(d *configDoc, in func(string) string) error {
	if err := d.set(in("enabled") != "", "notify", "enabled"); err != nil {
		return err
	}
	for _, k := range []string{"host", "from", "username"} {
		if err := d.set(in(k), "notify", "smtp", k); err != nil {
			return err
		}
	}
	if v := in("port"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return fmt.Errorf("port: want a number, got %q", v)
		}
		if err := d.set(n, "notify", "smtp", "port"); err != nil {
			return err
		}
	}
	if v := in("password"); v != "" {
		if err := d.set(v, "notify", "smtp", "password"); err != nil {
			return err
		}
	}
	var old []map[string]any
	if err := d.get(&old, "notify", "recipients"); err != nil {
		return err
	}
	rcpts := []map[string]any{}
	for _, r := range old {
		if str(r["email"]) == "" {
			rcpts = append(rcpts, r)
		}
	}
	for _, e := range lines(in("emails")) {
		rcpts = append(rcpts, map[string]any{"email": e, "events": []string{"all"}})
	}
	return d.set(rcpts, "notify", "recipients")
}
