package inventory

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// CSVHeader is the column list of WriteCSV.
var CSVHeader = []string{"id", "name", "type", "type_confidence", "vendor", "model", "os", "firmware", "serial",
	"hostname", "mac", "random_mac", "addresses", "segment", "owner", "location", "criticality", "ephi", "support",
	"eol_date", "ring", "last_patch", "compliance", "tags", "first_seen", "last_seen", "new", "identifiers"}

// WriteCSV writes assets as CSV with CSVHeader. Cells that a spreadsheet would take
// for a formula (=, +, -, @ first) are prefixed with ' : device names come from the
// network.
func WriteCSV(w io.Writer, assets []Asset) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(CSVHeader); err != nil {
		return err
	}
	for _, a := range assets {
		rec := []string{a.ID, a.Name, a.Type, strconv.FormatFloat(a.TypeConfidence, 'f', 2, 64), a.Vendor, a.Model, a.OS,
			a.Firmware, a.Serial, a.Hostname, a.MAC, strconv.FormatBool(a.RandomMAC), strings.Join(a.Addresses, " "),
			a.Segment, a.Owner, a.Location, a.Criticality, a.EPHI, a.Support, a.EOLDate, a.Ring, a.LastPatch, a.Compliance,
			strings.Join(a.Tags, " "), a.FirstSeen.UTC().Format(time.RFC3339), a.LastSeen.UTC().Format(time.RFC3339),
			strconv.FormatBool(a.New), strings.Join(a.Identifiers, " ")}
		for i, c := range rec {
			rec[i] = defuse(c)
		}
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("inventory: csv: %w", err)
	}
	return nil
}

func defuse(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

// Export is the JSON export: every asset, when, and how many.
type Export struct {
	Generated time.Time `json:"generated"`
	Count     int       `json:"count"`
	Assets    []Asset   `json:"assets"`
}

// WriteJSON writes assets as an Export.
func WriteJSON(w io.Writer, now time.Time, assets []Asset) error {
	if assets == nil {
		assets = []Asset{}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(Export{Generated: now.UTC(), Count: len(assets), Assets: assets})
}
