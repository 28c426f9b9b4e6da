package app

import (
	"fmt"

	"haven/shared/docid"
	"haven/shared/record"
)

// ErrNoSuchResident means no record on this computer holds the NHS number
// asked for.
type ErrNoSuchResident struct{ NHSNumber string }

func (e ErrNoSuchResident) Error() string {
	return fmt.Sprintf("no resident on this computer has the NHS number %s", e.NHSNumber)
}

// ResidentByNHS finds the record this computer holds for a ten-digit NHS
// number: the current resident's record before a discharged one's, since
// a person returning to a home is admitted afresh.
func (a *App) ResidentByNHS(digits string) (docid.ID, error) {
	var found *Row
	for _, r := range a.Residents(Filter{Discharged: true}) {
		if r.NHSNumber != digits || !r.Held {
			continue
		}
		if found == nil || (found.Status != record.StatusActive && r.Status == record.StatusActive) {
			r := r
			found = &r
		}
	}
	if found == nil {
		return docid.ID{}, ErrNoSuchResident{NHSNumber: digits}
	}
	return found.ID, nil
}
