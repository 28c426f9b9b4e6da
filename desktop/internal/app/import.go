package app

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"time"

	"haven/shared/record"
)

// ImportColumns are the columns a resident import file must have, named in
// its header row, in any order. ImportOptional may also be present.
var (
	ImportColumns  = []string{"nhs_number", "given_name", "family_name", "date_of_birth", "sex", "room", "gp_practice_ods"}
	ImportOptional = []string{"preferred_name"}
)

// importFields names, for each identity field a refusal can name, its
// column in the file.
var importFields = map[string]string{"nhsNumber": "nhs_number", "givenName": "given_name", "familyName": "family_name",
	"preferredName": "preferred_name", "dateOfBirth": "date_of_birth", "sex": "sex", "room": "room", "gpPractice": "gp_practice_ods"}

// ImportLine is one row of an import file that was not imported, and why.
type ImportLine struct {
	Line   int // in the file, the header being line 1
	Reason string
}

// ImportResult says what an import did. A row already held (the same NHS
// number, family name and date of birth as a resident of the home) is
// neither imported again nor refused: running an import twice adds
// nothing.
type ImportResult struct {
	Imported int
	Held     []ImportLine
	Refused  []ImportLine
}

// ErrImportFile is a file that cannot be imported at all (no header, a
// column missing); nothing of it was imported.
var ErrImportFile = errors.New("the file cannot be imported")

// ImportResidents admits every valid row of a CSV file to a home, once,
// as the signed-in member of staff; each row is checked as the admission
// form checks it (the NHS number's check digit, names, a date of birth
// that is a date and not in the future, the sex, the GP practice), and one
// already in the home is not admitted again.
func (a *App) ImportResidents(home string, r io.Reader) (ImportResult, error) {
	var res ImportResult
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.TrimLeadingSpace = true
	header, err := cr.Read()
	if err != nil {
		return res, fmt.Errorf("%w: no header row: %v", ErrImportFile, err)
	}
	col := map[string]int{}
	for i, h := range header {
		col[strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))] = i
	}
	var missing []string
	for _, c := range ImportColumns {
		if _, ok := col[c]; !ok {
			missing = append(missing, c)
		}
	}
	if len(missing) > 0 {
		return res, fmt.Errorf("%w: the header lacks %s (it must name %s)", ErrImportFile, strings.Join(missing, ", "), strings.Join(ImportColumns, ","))
	}
	for {
		row, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				res.Refused = append(res.Refused, ImportLine{pe.StartLine, "not a CSV row: " + pe.Err.Error()})
				continue
			}
			return res, err
		}
		line, _ := cr.FieldPos(0) // the file's own line: blank lines count
		get := func(c string) string {
			if i, ok := col[c]; ok && i < len(row) {
				return strings.TrimSpace(row[i])
			}
			return ""
		}
		if slices.IndexFunc(row, func(s string) bool { return strings.TrimSpace(s) != "" }) < 0 {
			continue // a blank line
		}
		id, why := importIdentity(get)
		if why != "" {
			res.Refused = append(res.Refused, ImportLine{line, why})
			continue
		}
		if err := a.checkNotHeld(home, id.NHSNumber, ""); err != nil {
			var dup *record.DuplicateError
			if errors.As(err, &dup) && strings.EqualFold(dup.Held.FamilyName, id.FamilyName) && dup.Held.DateOfBirth == id.DateOfBirth {
				res.Held = append(res.Held, ImportLine{line, "already in this home: " + dup.Held.GivenName + " " + dup.Held.FamilyName})
				continue
			}
		}
		if _, _, err := a.AddResident(home, id); err != nil {
			res.Refused = append(res.Refused, ImportLine{line, importReason(err)})
			continue
		}
		res.Imported++
	}
	return res, nil
}

// importIdentity reads a row as an identity; why says what is wrong with
// it that the record's own checks would not put in the file's terms.
func importIdentity(get func(string) string) (record.Identity, string) {
	nhsNo := strings.Map(func(r rune) rune {
		if r == ' ' || r == '-' {
			return -1
		}
		return r
	}, get("nhs_number"))
	dob := get("date_of_birth")
	if dob != "" {
		if _, err := time.Parse(record.DateLayout, dob); err != nil {
			return record.Identity{}, fmt.Sprintf("date_of_birth: %q is not a date written YYYY-MM-DD", dob)
		}
	}
	return record.Identity{NHSNumber: nhsNo, GivenName: get("given_name"), FamilyName: get("family_name"), PreferredName: get("preferred_name"),
		DateOfBirth: dob, Sex: strings.ToLower(get("sex")), Room: get("room"), GPPractice: strings.ToUpper(get("gp_practice_ods")),
		Status: record.StatusActive}, ""
}

// importReason words a refused admission in the file's column names.
func importReason(err error) string {
	var p *Problem
	if !errors.As(err, &p) {
		return err.Error()
	}
	if len(p.Fields) == 0 {
		return p.Message
	}
	var parts []string
	for f, why := range p.Fields {
		if c, ok := importFields[f]; ok {
			f = c
		}
		parts = append(parts, f+": "+why)
	}
	sort.Strings(parts)
	return strings.Join(parts, "; ")
}
