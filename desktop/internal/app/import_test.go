package app

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"haven/assets/demo"
)

// importFile is a file with a row of each kind: good ones, and each fault
// the import must refuse. held is the NHS number of a resident the home
// already has (under another name).
func importFile(held string) (string, map[int]string) {
	good, spaced := demo.NHSNumber(6000), demo.NHSNumber(6010)
	bad := good[:9] + string('0'+(good[9]-'0'+1)%10) // a wrong check digit
	rows := []string{
		"nhs_number,given_name,family_name,date_of_birth,sex,room,gp_practice_ods,preferred_name",
		good + ",Olive,Penrose,1933-05-06,female,21,E85001,Liv",
		bad + ",Walter,Brierley,1930-02-03,male,22,E85001,",
		demo.NHSNumber(6020) + ",Agnes,Fairlie,2099-01-01,female,23,E85001,",
		held + ",Someone,Else,1931-01-01,female,24,E85001,",
		demo.NHSNumber(6030) + ",,Nameless,1931-01-01,female,25,E85001,",
		demo.NHSNumber(6040) + ",Percy,Oddie,12/03/1931,male,26,E85001,",
		spaced[:3] + " " + spaced[3:6] + " " + spaced[6:] + ",Ruth,Marsh,1928-11-30,Female,27,e85001,",
		"",
		good + ",Olive,Penrose,1933-05-06,female,21,E85001,Liv",
	}
	// line → a word the refusal must contain
	refused := map[int]string{3: "nhs_number", 4: "date_of_birth", 5: "already held", 6: "given_name", 7: "date_of_birth"}
	return strings.Join(rows, "\n") + "\n", refused
}

// TestImportResidents: every valid row is admitted once; each bad row (a
// wrong check digit, a birth date in the future, an NHS number another
// resident holds, a missing name, a date not written YYYY-MM-DD) is refused
// by its line, naming the column; a row repeated, or the whole file run
// again, adds nothing.
func TestImportResidents(t *testing.T) {
	a, _, h := openApp(t, 2, "Mo Manager", managerPIN)
	held, err := a.Identity(h.Residents[0].RecordID)
	if err != nil {
		t.Fatal(err)
	}
	file, want := importFile(held.NHSNumber)
	before := len(a.Residents(Filter{}))
	res, err := a.ImportResidents("home-1", strings.NewReader(file))
	if err != nil {
		t.Fatal(err)
	}
	if res.Imported != 2 || len(res.Held) != 1 || res.Held[0].Line != 10 {
		t.Fatalf("imported %d, held %+v; want 2 imported and line 10 already held", res.Imported, res.Held)
	}
	got := map[int]string{}
	for _, l := range res.Refused {
		got[l.Line] = l.Reason
	}
	if len(got) != len(want) {
		t.Fatalf("refused %v; want lines %v", got, want)
	}
	for line, word := range want {
		if !strings.Contains(got[line], word) {
			t.Errorf("line %d refused as %q; want it to say %s", line, got[line], word)
		}
	}
	if n := len(a.Residents(Filter{})); n != before+2 {
		t.Fatalf("%d residents after the import, want %d", n, before+2)
	}
	var found bool
	for _, r := range a.Residents(Filter{Query: "Marsh"}) {
		found = r.GivenName == "Ruth" && r.NHSNumber == demo.NHSNumber(6010)
	}
	if !found {
		t.Fatal("the row with a spaced NHS number and a capitalised sex was not admitted as typed")
	}

	again, err := a.ImportResidents("home-1", strings.NewReader(file))
	if err != nil {
		t.Fatal(err)
	}
	if again.Imported != 0 || len(again.Held) != 3 || len(again.Refused) != len(want) {
		t.Fatalf("run again: imported %d, held %d, refused %d; want 0, 3, %d", again.Imported, len(again.Held), len(again.Refused), len(want))
	}
	if n := len(a.Residents(Filter{})); n != before+2 {
		t.Fatalf("%d residents after running it twice, want %d", n, before+2)
	}
}

// TestImportFileWithoutItsColumns: a file whose header lacks a column is
// refused whole, naming what it lacks, and nothing is admitted.
func TestImportFileWithoutItsColumns(t *testing.T) {
	a, _, _ := openApp(t, 1, "Mo Manager", managerPIN)
	before := len(a.Residents(Filter{}))
	_, err := a.ImportResidents("home-1", strings.NewReader(fmt.Sprintf("nhs_number,given_name,family_name\n%s,Olive,Penrose\n", demo.NHSNumber(6000))))
	if !errors.Is(err, ErrImportFile) || !strings.Contains(err.Error(), "date_of_birth") {
		t.Fatalf("a file without date_of_birth: %v", err)
	}
	if n := len(a.Residents(Filter{})); n != before {
		t.Fatalf("%d residents, want %d", n, before)
	}
}
