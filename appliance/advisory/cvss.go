package advisory

import (
	"fmt"
	"strings"

	gocvss20 "github.com/pandatix/go-cvss/20"
	gocvss30 "github.com/pandatix/go-cvss/30"
	gocvss31 "github.com/pandatix/go-cvss/31"
	gocvss40 "github.com/pandatix/go-cvss/40"
)

// maxVectorLen bounds a CVSS vector: the longest valid v4.0 vector with every
// optional metric is under 300 characters.
const maxVectorLen = 512

// ScoreVector computes the base score of a CVSS vector — v3.0 and v3.1
// ("CVSS:3.1/AV:N/…"), v4.0 ("CVSS:4.0/AV:N/…") or v2 (no prefix, "AV:N/AC:L/Au:N/…")
// — and the appliance severity of that score: the CVSS qualitative rating, with a
// score of 0.0 ("none") as low, and for v2 NVD's ratings (below 4 low, below 7 medium,
// else high). A vector that does not parse is an ErrInvalid quoting it.
func ScoreVector(vector string) (score float64, severity string, err error) {
	v := strings.TrimSpace(vector)
	if len(v) > maxVectorLen {
		return 0, Unknown, fmt.Errorf("cvss: %w: vector of %d characters, more than %d", ErrInvalid, len(v), maxVectorLen)
	}
	bad := func(err error) (float64, string, error) {
		return 0, Unknown, fmt.Errorf("cvss: %w: vector %q: %v", ErrInvalid, v, err)
	}
	switch {
	case strings.HasPrefix(v, "CVSS:3.0/"):
		c, err := gocvss30.ParseVector(v)
		if err != nil {
			return bad(err)
		}
		score = c.BaseScore()
	case strings.HasPrefix(v, "CVSS:3.1/"):
		c, err := gocvss31.ParseVector(v)
		if err != nil {
			return bad(err)
		}
		score = c.BaseScore()
	case strings.HasPrefix(v, "CVSS:4.0/"):
		c, err := gocvss40.ParseVector(v)
		if err != nil {
			return bad(err)
		}
		score = c.Score()
	case strings.HasPrefix(v, "AV:") || strings.HasPrefix(v, "(AV:"):
		c, err := gocvss20.ParseVector(strings.TrimSuffix(strings.TrimPrefix(v, "("), ")"))
		if err != nil {
			return bad(err)
		}
		score = c.BaseScore()
		switch {
		case score >= 7:
			return score, High, nil
		case score >= 4:
			return score, Medium, nil
		}
		return score, Low, nil
	default:
		return bad(fmt.Errorf("not a CVSS v2, v3.0, v3.1 or v4.0 vector"))
	}
	if score == 0 {
		return score, Low, nil
	}
	return score, cvssRating(score), nil
}

// scoring collects an advisory's CVSS vectors: the worst valid one decides its
// severity; a vector that does not parse is remembered as the advisory's score error.
type scoring struct {
	score    float64
	vector   string
	severity string
	errs     []string
}

func (s *scoring) add(vector string) {
	if strings.TrimSpace(vector) == "" {
		return
	}
	score, sev, err := ScoreVector(vector)
	if err != nil {
		s.errs = append(s.errs, err.Error())
		return
	}
	if s.vector == "" || score > s.score {
		s.score, s.vector, s.severity = score, strings.TrimSpace(vector), sev
	}
}

// apply sets a's severity from the worst valid vector, when there is one (else a keeps
// the severity the feed states), its score and vector, and its score error naming the
// advisory.
func (s *scoring) apply(a *Advisory) {
	if s.vector != "" {
		a.Severity, a.CVSS, a.Vector = s.severity, s.score, s.vector
	}
	if len(s.errs) > 0 {
		a.ScoreError = fmt.Sprintf("advisory %s (document %s): %s", a.ID, a.Document, strings.Join(s.errs, "; "))
	}
}

// maxScoreErrors bounds the score errors a fetch or an import reports.
const maxScoreErrors = 20

// scoreErrors lists the score errors of d's advisories, at most maxScoreErrors and a
// count of the rest.
func scoreErrors(d Data) []string {
	var out []string
	n := 0
	for _, a := range d.Advisories {
		if a.ScoreError == "" {
			continue
		}
		if n++; n <= maxScoreErrors {
			out = append(out, a.ScoreError)
		}
	}
	if n > maxScoreErrors {
		out = append(out, fmt.Sprintf("and %d more advisories with a CVSS vector that does not parse", n-maxScoreErrors))
	}
	return out
}
