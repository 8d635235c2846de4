package advisory

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Asset is a device as matching sees it: what discovery and its agent say it is.
type Asset struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	Address string `json:"address,omitempty"`
	// Vendor, Model and Firmware are from the fingerprint rules (or an admin).
	Vendor   string `json:"vendor,omitempty"`
	Model    string `json:"model,omitempty"`
	Firmware string `json:"firmware,omitempty"`
	// OSName and OSBuild are what an agent reports ("Windows 10", "19045.3930").
	OSName  string `json:"os_name,omitempty"`
	OSBuild string `json:"os_build,omitempty"`
	// Ecosystem is the OSV ecosystem of Packages ("Debian:12", "Ubuntu:22.04"; "" when
	// the agent's OS has none).
	Ecosystem string    `json:"ecosystem,omitempty"`
	Packages  []Package `json:"packages,omitempty"`
	// AgentID names the agent on the device, whose reported packages
	// (Service.AgentPackages) the service fills in.
	AgentID string `json:"agent_id,omitempty"`
}

// Package is one installed package an agent reported.
type Package struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

// Match is one advisory found to concern one asset, with why.
type Match struct {
	AssetID   string    `json:"asset_id"`
	Asset     string    `json:"asset"`
	Vuln      string    `json:"vuln"` // the CVE when there is one, else the advisory id
	CVEs      []string  `json:"cves,omitempty"`
	Feed      string    `json:"feed"`
	Advisory  string    `json:"advisory"` // document id (CSAF tracking id, OSV id, KEV)
	Title     string    `json:"title,omitempty"`
	URL       string    `json:"url,omitempty"`
	Severity  string    `json:"severity"`
	Published time.Time `json:"published,omitzero"`
	Exploited bool      `json:"exploited"`
	KEVDue    string    `json:"kev_due,omitempty"`
	// Ambiguous: the identifiers agree only in part (a model without a firmware
	// version, a vendor not known, a version range not evaluated); shown, never
	// counted as open.
	Ambiguous bool   `json:"ambiguous"`
	Evidence  string `json:"evidence"`
	Fixed     string `json:"fixed_version,omitempty"`
	// CVSS and Vector: the base score that decided Severity; ScoreError: the advisory's
	// vectors that did not parse (the finding is then scored as the feed states).
	CVSS       float64 `json:"cvss,omitempty"`
	Vector     string  `json:"cvss_vector,omitempty"`
	ScoreError string  `json:"score_error,omitempty"`
}

// Corpus is the advisory data of every feed and import, by source name.
type Corpus map[string]Data

// MatchAll matches every asset against every advisory of c and flags the matches whose
// CVEs the KEV catalogs list. A KEV entry no advisory describes is matched by its vendor
// and product names alone, as ambiguous (the catalog names no versions). One match per
// asset and vulnerability: an unambiguous match wins over an ambiguous one, the worst
// severity is kept, and the evidence of each is joined.
func MatchAll(assets []Asset, c Corpus) []Match {
	kev := map[string]KEVEntry{}
	sources := make([]string, 0, len(c))
	for name, d := range c {
		sources = append(sources, name)
		for _, e := range d.KEV {
			if old, ok := kev[e.CVE]; !ok || (e.Due != "" && (old.Due == "" || e.Due < old.Due)) {
				kev[e.CVE] = e
			}
		}
	}
	slices.Sort(sources)
	described := map[string]bool{}
	type key struct{ asset, vuln string }
	found := map[key]*Match{}
	var order []key
	add := func(m Match) {
		k := key{m.AssetID, m.Vuln}
		old := found[k]
		switch {
		case old == nil:
			found[k] = &m
			order = append(order, k)
		case old.Ambiguous && !m.Ambiguous:
			m.Evidence += "; " + old.Evidence
			if severityRank(old.Severity) > severityRank(m.Severity) {
				m.Severity, m.CVSS, m.Vector = old.Severity, old.CVSS, old.Vector
			}
			*old = m
		default:
			if !strings.Contains(old.Evidence, m.Evidence) {
				old.Evidence += "; " + m.Evidence
			}
			if severityRank(m.Severity) > severityRank(old.Severity) {
				old.Severity, old.CVSS, old.Vector = m.Severity, m.CVSS, m.Vector
			}
			if old.ScoreError == "" {
				old.ScoreError = m.ScoreError
			}
			if old.Fixed == "" {
				old.Fixed = m.Fixed
			}
		}
	}
	for _, src := range sources {
		for _, adv := range c[src].Advisories {
			for _, cve := range adv.CVEs {
				described[cve] = true
			}
			vuln := adv.ID
			if len(adv.CVEs) > 0 {
				vuln = adv.CVEs[0]
			}
			for _, a := range assets {
				for _, p := range adv.Products {
					ok, amb, ev, fixed := matchProduct(a, p)
					if !ok {
						continue
					}
					add(Match{AssetID: a.ID, Asset: a.Name, Vuln: vuln, CVEs: adv.CVEs, Feed: src, Advisory: adv.Document,
						Title: adv.Title, URL: adv.URL, Severity: adv.Severity, Published: adv.Published,
						Ambiguous: amb, Evidence: src + " " + adv.Document + ": " + ev, Fixed: fixed,
						CVSS: adv.CVSS, Vector: adv.Vector, ScoreError: adv.ScoreError})
				}
			}
		}
	}
	// KEV entries no advisory describes: vendor and product names only.
	cves := make([]string, 0, len(kev))
	for cve := range kev {
		cves = append(cves, cve)
	}
	slices.Sort(cves)
	for _, cve := range cves {
		e := kev[cve]
		if described[cve] || norm(e.Product) == "" {
			continue
		}
		for _, a := range assets {
			if ev, ok := kevNames(a, e); ok {
				add(Match{AssetID: a.ID, Asset: a.Name, Vuln: cve, CVEs: []string{cve}, Feed: "kev", Advisory: "KEV",
					Title: e.Name, Severity: Unknown, Ambiguous: true, Evidence: ev})
			}
		}
	}
	out := make([]Match, 0, len(order))
	for _, k := range order {
		m := *found[k]
		for _, cve := range m.CVEs {
			if e, ok := kev[cve]; ok {
				m.Exploited = true
				if m.KEVDue == "" || (e.Due != "" && e.Due < m.KEVDue) {
					m.KEVDue = e.Due
				}
			}
		}
		out = append(out, m)
	}
	slices.SortFunc(out, func(a, b Match) int {
		return strings.Compare(a.AssetID+"\x00"+a.Vuln, b.AssetID+"\x00"+b.Vuln)
	})
	return out
}

// kevNames matches a KEV entry to a device by its vendor and product names.
func kevNames(a Asset, e KEVEntry) (string, bool) {
	model, prod := norm(a.Model), norm(e.Product)
	if model == "" || !(model == prod || strings.HasPrefix(model, prod) || strings.HasPrefix(prod, model)) || !sameVendor(a.Vendor, e.Vendor) {
		return "", false
	}
	return fmt.Sprintf("kev: %s lists %s %s; the device is %s %s (the catalog names no versions)", e.CVE, e.Vendor, e.Product, a.Vendor, a.Model), true
}

// sameVendor: both known and one folds to a prefix of the other ("Zebra" and "Zebra
// Technologies").
func sameVendor(a, b string) bool {
	na, nb := norm(a), norm(b)
	return na != "" && nb != "" && (strings.HasPrefix(na, nb) || strings.HasPrefix(nb, na))
}

// cpe is the part of a CPE 2.3 name matching uses.
type cpe struct{ part, vendor, product, version string }

func parseCPE(s string) (cpe, bool) {
	f := strings.Split(s, ":")
	if len(f) < 6 || f[0] != "cpe" || f[1] != "2.3" {
		return cpe{}, false
	}
	c := cpe{part: f[2], vendor: strings.ReplaceAll(f[3], "_", " "), product: strings.ReplaceAll(f[4], "_", " "), version: f[5]}
	if c.version == "*" || c.version == "-" {
		c.version = ""
	}
	return c, true
}

// matchProduct decides whether product p concerns asset a: matched, ambiguous, the
// evidence in words, and the fixing version when known.
func matchProduct(a Asset, p Product) (ok, ambiguous bool, evidence, fixed string) {
	if p.Package != "" || p.PURL != "" {
		// A package, or a CSAF product that also names a model (its branches): the
		// packages first, then the device.
		if ok, ambiguous, evidence, fixed = matchPackage(a, p); ok || (p.Model == "" && p.CPE == "" && len(p.ModelNumbers) == 0) {
			return ok, ambiguous, evidence, fixed
		}
	}
	vendor, models, versions := p.Vendor, []string{p.Model}, p.Versions
	models = append(models, p.ModelNumbers...)
	var how []string
	if c, isCPE := parseCPE(p.CPE); isCPE {
		if vendor == "" {
			vendor = c.vendor
		}
		models = append(models, c.product, strings.TrimSuffix(c.product, " firmware"))
		if c.version != "" && len(versions) == 0 {
			versions = []string{c.version}
		}
		how = append(how, "cpe "+p.CPE)
	}
	// A device's model from the fingerprint rules, or an agent's OS.
	type ident struct{ what, vendor, model, version string }
	ids := []ident{{"firmware", a.Vendor, a.Model, a.Firmware}, {"os build", "", a.OSName, a.OSBuild}}
	for _, id := range ids {
		nm := norm(id.model)
		if nm == "" || !slices.ContainsFunc(models, func(m string) bool { return norm(m) == nm }) {
			continue
		}
		ev := fmt.Sprintf("%q %s %s matches %s %q", id.model, id.what, orUnknown(id.version), strings.Join(append(how, "product"), ", "), p.Name)
		if id.what == "firmware" && !sameVendor(id.vendor, vendor) {
			if norm(id.vendor) != "" && norm(vendor) != "" {
				continue // another vendor's product of the same name
			}
			return true, true, ev + fmt.Sprintf("; vendor not known on both sides (device %q, advisory %q)", id.vendor, vendor), p.Fixed
		}
		switch {
		case id.version == "":
			return true, true, ev + "; the device's version is not known", p.Fixed
		case slices.ContainsFunc(versions, func(v string) bool { return sameVersion(v, id.version) }):
			return true, false, ev + "; version listed as affected", p.Fixed
		case p.VersionRange != "" && len(versions) == 0:
			if ok, amb, why := inRange(p.VersionRange, id.version); ok {
				return true, amb, ev + "; " + why, p.Fixed
			}
			// Outside the range: not affected.
		case p.Fixed != "" && CompareVersions(id.version, p.Fixed) < 0 &&
			(len(versions) == 0 || CompareVersions(id.version, slices.MinFunc(versions, CompareVersions)) >= 0):
			return true, false, ev + "; below the fixed version " + p.Fixed, p.Fixed
		case len(versions) == 0 && p.Fixed == "":
			return true, true, ev + "; the advisory names no version", ""
		}
	}
	return false, false, "", ""
}

// sameVersion: equal by CompareVersions, letters' case aside (CPE names are lower case).
func sameVersion(a, b string) bool {
	return CompareVersions(strings.ToLower(a), strings.ToLower(b)) == 0
}

func orUnknown(s string) string {
	if s == "" {
		return "(version unknown)"
	}
	return s
}

// purl is the part of a package URL matching uses.
type purl struct{ typ, namespace, name, version string }

func parsePURL(s string) (purl, bool) {
	rest, ok := strings.CutPrefix(s, "pkg:")
	if !ok {
		return purl{}, false
	}
	rest, _, _ = strings.Cut(rest, "?")
	rest, _, _ = strings.Cut(rest, "#")
	var p purl
	rest, p.version, _ = strings.Cut(rest, "@")
	parts := strings.Split(rest, "/")
	if len(parts) < 2 || parts[0] == "" || parts[len(parts)-1] == "" {
		return purl{}, false
	}
	p.typ, p.name = strings.ToLower(parts[0]), parts[len(parts)-1]
	p.namespace = strings.ToLower(strings.Join(parts[1:len(parts)-1], "/"))
	return p, true
}

// ecosystemOf is the OSV ecosystem base a purl type and namespace stand for.
func ecosystemOf(p purl) string {
	switch p.typ {
	case "deb":
		if p.namespace == "ubuntu" {
			return "Ubuntu"
		}
		return "Debian"
	case "apk":
		return "Alpine"
	case "rpm":
		return strings.ToUpper(p.namespace[:min(1, len(p.namespace))]) + p.namespace[min(1, len(p.namespace)):]
	case "pypi":
		return "PyPI"
	case "npm":
		return "npm"
	}
	return p.typ
}

// sameEcosystem: equal, or the advisory names the distribution without its release
// ("Debian" for an agent on "Debian:12").
func sameEcosystem(asset, adv string) bool {
	if asset == "" || adv == "" {
		return false
	}
	if strings.EqualFold(asset, adv) {
		return true
	}
	base, _, _ := strings.Cut(asset, ":")
	return !strings.Contains(adv, ":") && strings.EqualFold(base, adv)
}

func matchPackage(a Asset, p Product) (ok, ambiguous bool, evidence, fixed string) {
	eco, name, versions := p.Ecosystem, p.Package, p.Versions
	if pu, isPURL := parsePURL(p.PURL); isPURL && name == "" {
		eco, name = ecosystemOf(pu), pu.name
		if pu.version != "" {
			versions = append(versions, pu.version)
		}
	}
	if !sameEcosystem(a.Ecosystem, eco) {
		return false, false, "", ""
	}
	for _, pkg := range a.Packages {
		if !strings.EqualFold(pkg.Name, name) {
			continue
		}
		ev := fmt.Sprintf("package %s %s (%s) ", pkg.Name, pkg.Version, a.Ecosystem)
		if slices.ContainsFunc(versions, func(v string) bool { return sameVersion(v, pkg.Version) }) {
			return true, false, ev + "is a version listed as affected", p.Fixed
		}
		for _, r := range p.Ranges {
			if r.Contains(pkg.Version) {
				return true, false, ev + fmt.Sprintf("is in the affected range [%s, %s)", cmp.Or(r.Introduced, "0"), cmp.Or(r.Fixed, "last "+r.LastAffected)), p.Fixed
			}
		}
		if p.VersionRange != "" && len(versions) == 0 {
			if ok, amb, why := inRange(p.VersionRange, pkg.Version); ok {
				return true, amb, ev + why, p.Fixed
			}
			continue // outside the range: not affected
		}
		if len(versions) == 0 && len(p.Ranges) == 0 {
			return true, true, ev + "matches by name; the advisory names no version", p.Fixed
		}
	}
	return false, false, "", ""
}

// inRange decides a vers range for version v: matched (v inside) or not, and ambiguous
// with the reason when the range cannot be evaluated (an unsupported scheme, a
// malformed range, a version the scheme cannot read).
func inRange(vers, v string) (matched, ambiguous bool, why string) {
	in, err := versContains(vers, v)
	switch {
	case err != nil:
		return true, true, fmt.Sprintf("version range %s not evaluated: %v", vers, err)
	case in:
		return true, false, fmt.Sprintf("%s is in the affected range %s", v, vers)
	}
	return false, false, ""
}
