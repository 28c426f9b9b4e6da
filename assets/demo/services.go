package demo

import (
	_ "embed"
	"strings"
	"time"

	"haven/shared/crdt"
	"haven/shared/docid"
	"haven/shared/nhs"
	"haven/shared/record"
)

// servicesCSV is the demo region's directory of services, invented around
// the demo home's area, with the dates its details were confirmed as of
// servicesAsOf.
//
//go:embed services.csv
var servicesCSV string

// servicesAsOf is the day the file's newest confirmation is dated; a demo
// made on another day moves every date by the same amount (ServicesCSV).
var servicesAsOf = time.Date(2026, 11, 18, 0, 0, 0, 0, time.UTC)

// Region is the demo region's name.
const Region = "North West London (demo)"

// HomeArea is where the demo's care home is.
var HomeArea = record.HomeArea{Postcode: "NW10 9QX", Borough: "Brent"}

// ServicesCSV is the demo directory of services as a file to load, its
// newest confirmation a fortnight before now, so that a demo shows most
// services confirmed and one (Brent Rapid Response, confirmed eight months earlier) marked.
func ServicesCSV(now time.Time) string {
	shift := now.AddDate(0, 0, -14).Sub(servicesAsOf).Round(24 * time.Hour)
	lines := strings.Split(servicesCSV, "\n")
	for i := 1; i < len(lines); i++ {
		cut := strings.LastIndexByte(lines[i], ',')
		if cut < 0 {
			continue
		}
		if d, err := time.Parse(record.DateLayout, lines[i][cut+1:]); err == nil {
			lines[i] = lines[i][:cut+1] + d.Add(shift).Format(record.DateLayout)
		}
	}
	return strings.Join(lines, "\n")
}

// relayEditor writes as the relay's administrator does.
func relayEditor(now time.Time) (*record.Editor, error) {
	return record.NewEditor(record.RelayAuthor, record.Rules{NHS: nhs.Demo, Now: func() time.Time { return now }})
}

// SetArea writes the demo home's postcode and borough into its directory.
func SetArea(dir *crdt.Doc, now time.Time) error {
	ed, err := relayEditor(now)
	if err != nil {
		return err
	}
	return ed.SetHomeArea(dir, HomeArea)
}

// NewServices makes the demo region's directory of services, as an
// administrator's load of ServicesCSV would.
func NewServices(now time.Time) (*crdt.Doc, docid.ID, error) {
	list, err := record.ParseServicesCSV(strings.NewReader(ServicesCSV(now)))
	if err != nil {
		return nil, docid.ID{}, err
	}
	ed, err := relayEditor(now)
	if err != nil {
		return nil, docid.ID{}, err
	}
	doc, id, err := ed.NewServices(Region)
	if err == nil {
		_, _, err = ed.LoadServices(doc, list)
	}
	return doc, id, err
}
