package app

import (
	"errors"
	"io"

	"haven/shared/docid"
)

// ExportFHIR writes a resident's FHIR R4 document bundle to w, and audits it.
func (a *App) ExportFHIR(id docid.ID, w io.Writer) error {
	return errors.New("FHIR export is not built yet")
}
