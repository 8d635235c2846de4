package fingerprint

import (
	"slices"

	"github.com/patchgate/patchgate/netscan"
)

// Evidence is one rule that matched, with the facts that made it match.
type Evidence struct {
	Rule       string         `json:"rule"`
	Confidence float64        `json:"confidence"`
	Facts      []netscan.Fact `json:"facts"`
}

// Attribute is a value a rule set (vendor, model, firmware or OS), with the
// confidence of the rule that set it and the evidence behind it.
type Attribute struct {
	Value      string   `json:"value"`
	Confidence float64  `json:"confidence"`
	Evidence   Evidence `json:"evidence"`
}

// Result is what the rules make of a device.
type Result struct {
	Type       Type    `json:"type"`
	Confidence float64 `json:"confidence"`
	// Evidence lists the rules that voted for Type, strongest first.
	Evidence []Evidence       `json:"evidence,omitempty"`
	Vendor   Attribute        `json:"vendor"`
	Model    Attribute        `json:"model"`
	Firmware Attribute        `json:"firmware"`
	OS       Attribute        `json:"os"`
	Scores   map[Type]float64 `json:"scores,omitempty"` // every type with any evidence
	Facts    []netscan.Fact   `json:"-"`                // the facts classified, with mac.vendor and mac.random added
}

// subtypes refine a broader type: a device with enough evidence of the
// subtype is the subtype, and the broader type's evidence counts for it.
var subtypes = map[Type]Type{TypeLabelPrinter: TypePrinter}

// subtypeThreshold is the least own score a subtype needs to win.
const subtypeThreshold = 0.5

// Classifier applies rules to facts. It is safe for concurrent use.
type Classifier struct {
	rules *Rules
}

// New returns a Classifier over rules (DefaultRules() when nil).
func New(rules *Rules) *Classifier {
	if rules == nil {
		rules = DefaultRules()
	}
	return &Classifier{rules: rules}
}

// Classify decides what the device with MAC mac (zero if unknown) and the
// given facts is. It adds the facts mac.vendor (from the IEEE registry) and
// mac.random (for a locally administered MAC) before applying the rules.
//
// Each matching rule votes for its type with its confidence; a type's score
// combines its votes as independent evidence (1 - Π(1-c)). The highest
// score wins (ties go to the type listed first in Types); a device no rule
// types is TypeUnknown with confidence 0. Each attribute comes from the
// most confident matching rule that sets it.
func (c *Classifier) Classify(mac netscan.MAC, facts []netscan.Fact) Result {
	all := make([]netscan.Fact, 0, len(facts)+2)
	all = append(all, facts...)
	if v := Vendor(mac); v != "" {
		all = append(all, netscan.Fact{Key: netscan.KeyMACVendor, Value: v})
	}
	if mac.Unicast() && mac.LocallyAdministered() {
		all = append(all, netscan.Fact{Key: netscan.KeyMACRandom, Value: "true"})
	}
	res := Result{Type: TypeUnknown, Facts: all, Scores: map[Type]float64{}}
	byType := map[Type][]Evidence{}
	attrs := map[string]*Attribute{AttrVendor: &res.Vendor, AttrModel: &res.Model, AttrFirmware: &res.Firmware, AttrOS: &res.OS}
	for _, r := range c.rules.rules {
		ev, ok := r.apply(all)
		if !ok {
			continue
		}
		if r.typ != "" {
			byType[r.typ] = append(byType[r.typ], ev)
		}
		for _, name := range sortedKeys(r.set) {
			dst := attrs[name]
			if r.confidence <= dst.Confidence {
				continue
			}
			v, used := r.set[name].value(all)
			if v == "" {
				continue
			}
			e := ev
			if used != nil {
				e.Facts = mergeFacts(ev.Facts, used)
			}
			*dst = Attribute{Value: v, Confidence: r.confidence, Evidence: e}
		}
	}
	own := map[Type]float64{}
	for t, evs := range byType {
		own[t] = combine(evs)
	}
	for _, t := range Types {
		score, ok := own[t]
		if !ok {
			continue
		}
		evs := byType[t]
		if parent, isSub := subtypes[t]; isSub {
			if score < subtypeThreshold {
				continue // not enough to claim the refinement
			}
			evs = append(slices.Clone(evs), byType[parent]...)
			score = combine(evs)
		}
		res.Scores[t] = score
		if score > res.Confidence {
			res.Type, res.Confidence = t, score
			res.Evidence = evs
		}
	}
	slices.SortStableFunc(res.Evidence, func(a, b Evidence) int {
		switch {
		case a.Confidence > b.Confidence:
			return -1
		case a.Confidence < b.Confidence:
			return 1
		}
		return 0
	})
	return res
}

// combine treats votes as independent evidence: 1 - Π(1-c).
func combine(evs []Evidence) float64 {
	miss := 1.0
	for _, e := range evs {
		miss *= 1 - e.Confidence
	}
	return 1 - miss
}

// apply reports whether r matches facts, and the evidence.
func (r rule) apply(facts []netscan.Fact) (Evidence, bool) {
	ev := Evidence{Rule: r.name, Confidence: r.confidence}
	for _, c := range r.when {
		hit := c.match(facts)
		if hit == nil {
			return Evidence{}, false
		}
		ev.Facts = append(ev.Facts, hit[0])
	}
	for _, c := range r.unless {
		if c.match(facts) != nil {
			return Evidence{}, false
		}
	}
	return ev, true
}

func mergeFacts(a, b []netscan.Fact) []netscan.Fact {
	out := slices.Clone(a)
	for _, f := range b {
		if !slices.Contains(out, f) {
			out = append(out, f)
		}
	}
	return out
}
