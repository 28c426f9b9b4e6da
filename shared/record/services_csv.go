package record

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"
)

// A region's administrator keeps the directory of services in a
// spreadsheet and loads it as CSV. The first row names the columns, in any
// order:
//
//	id, name, kind, offers, mon, tue, wed, thu, fri, sat, sun,
//	phone_day, phone_night, areas, referral, confirmed
//
// phone_night may be left out; areas are separated by ";". A load makes
// the directory hold exactly the file's services, so a file with any bad
// row is refused whole: loading the good rows alone would remove the
// services of the bad ones from every device.

// ServiceColumns are the CSV columns, in the order a template lists them.
var ServiceColumns = []string{"id", "name", "kind", "offers", "mon", "tue", "wed", "thu", "fri", "sat", "sun",
	"phone_day", "phone_night", "areas", "referral", "confirmed"}

// optionalColumns may be missing from the header.
var optionalColumns = map[string]bool{"phone_night": true}

// RowError is one problem in a services CSV: the line it is on (1 is the
// header), the column or field, and what is wrong.
type RowError struct {
	Line    int
	Field   string
	Problem string
}

func (e *RowError) Error() string { return fmt.Sprintf("line %d: %s: %s", e.Line, e.Field, e.Problem) }

// CSVError lists every problem of a refused file.
type CSVError struct{ Rows []*RowError }

func (e *CSVError) Error() string {
	parts := make([]string, len(e.Rows))
	for i, r := range e.Rows {
		parts[i] = r.Error()
	}
	return "the file was not loaded; nothing changed:\n" + strings.Join(parts, "\n")
}

// ErrCSV is wrapped by every CSVError.
var ErrCSV = errors.New("services file refused")

func (e *CSVError) Unwrap() error { return ErrCSV }

// ParseServicesCSV reads a services file. Every row is checked; if any
// has a problem, it returns a *CSVError naming each by line, and no
// services.
func ParseServicesCSV(r io.Reader) ([]Service, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.TrimLeadingSpace = true
	var bad []*RowError
	header, err := cr.Read()
	if err != nil {
		return nil, &CSVError{Rows: []*RowError{{Line: 1, Field: "header", Problem: "the file has no header row naming its columns"}}}
	}
	col := map[string]int{}
	for i, h := range header {
		h = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))
		if !oneOf(h, ServiceColumns) {
			bad = append(bad, &RowError{1, "header", fmt.Sprintf("unknown column %q (the columns are %s)", h, strings.Join(ServiceColumns, ", "))})
			continue
		}
		if _, dup := col[h]; dup {
			bad = append(bad, &RowError{1, h, "column named twice"})
		}
		col[h] = i
	}
	for _, c := range ServiceColumns {
		if _, ok := col[c]; !ok && !optionalColumns[c] {
			bad = append(bad, &RowError{1, c, "column missing from the header"})
		}
	}
	if len(bad) > 0 {
		return nil, &CSVError{Rows: bad}
	}
	var out []Service
	lineOf := map[string]int{}
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		line, _ := cr.FieldPos(0)
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				line = pe.Line
			}
			bad = append(bad, &RowError{line, "row", "not readable as CSV (a quote not closed?)"})
			if pe == nil {
				break
			}
			continue
		}
		if strings.TrimSpace(strings.Join(rec, "")) == "" {
			continue // a blank line
		}
		get := func(c string) string {
			if i, ok := col[c]; ok && i < len(rec) {
				return strings.TrimSpace(rec[i])
			}
			return ""
		}
		s := Service{ID: get("id"), Name: get("name"), Kind: strings.ToLower(get("kind")), Offers: get("offers"),
			PhoneDay: get("phone_day"), PhoneNight: get("phone_night"), Referral: get("referral"), Confirmed: get("confirmed")}
		for i, d := range Weekdays {
			s.Hours[i] = get(d)
		}
		for _, a := range strings.Split(get("areas"), ";") {
			if a = strings.TrimSpace(a); a != "" {
				s.Areas = append(s.Areas, a)
			}
		}
		if !serviceID(s.ID) {
			bad = append(bad, &RowError{line, "id", "give each service an ID of letters, digits and - (at most 40), kept the same from file to file"})
		} else if first, dup := lineOf[s.ID]; dup {
			bad = append(bad, &RowError{line, "id", fmt.Sprintf("the ID is also on line %d", first)})
		} else {
			lineOf[s.ID] = line
		}
		var ve *ValidationError
		if err := ValidateService(s); errors.As(err, &ve) {
			for _, f := range ve.Fields {
				bad = append(bad, &RowError{line, csvColumn(f.Field), f.Problem})
			}
		}
		out = append(out, s)
	}
	if len(bad) > 0 {
		return nil, &CSVError{Rows: bad}
	}
	if len(out) == 0 {
		return nil, &CSVError{Rows: []*RowError{{Line: 2, Field: "row", Problem: "the file lists no services"}}}
	}
	return out, nil
}

// csvColumn names a Service field by its CSV column.
func csvColumn(field string) string {
	switch field {
	case "phoneDay":
		return "phone_day"
	case "phoneNight":
		return "phone_night"
	}
	return field
}

func serviceID(s string) bool {
	if s == "" || len(s) > 40 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
			return false
		}
	}
	return true
}
