package app

import (
	"errors"
	"strings"
	"testing"

	"haven/assets/demo"
	"haven/shared/record"
)

// TestSecondRecordForAPersonRefused: admitting an NHS number the home
// already holds is refused, naming the resident who has it and their room,
// against the NHS number field; nothing is added to the list.
func TestSecondRecordForAPersonRefused(t *testing.T) {
	a, _, h := openApp(t, 3, "Mo Manager", managerPIN)
	held, err := a.FrontSheet(h.Residents[1].RecordID)
	if err != nil {
		t.Fatal(err)
	}
	rows := len(a.Residents(Filter{}))
	_, _, err = a.AddResident("home-1", record.Identity{NHSNumber: strings.ReplaceAll(held.NHSNumber, " ", ""), GivenName: "Someone", FamilyName: "Else",
		DateOfBirth: "1931-01-01", Sex: "female", Room: "40"})
	var p *Problem
	if !errors.As(err, &p) || !strings.Contains(p.Fields["nhsNumber"], held.Name) || !strings.Contains(p.Fields["nhsNumber"], "room "+held.Room) {
		t.Fatalf("a second record for %s (room %s): %v", held.Name, held.Room, err)
	}
	if n := len(a.Residents(Filter{})); n != rows {
		t.Fatalf("the list went from %d to %d residents", rows, n)
	}
	if _, _, err := a.AddResident("home-1", record.Identity{NHSNumber: demo.NHSNumber(5002), GivenName: "Someone", FamilyName: "Else",
		DateOfBirth: "1931-01-01", Sex: "female", Room: "40"}); err != nil {
		t.Fatalf("a new number: %v", err)
	}
}
