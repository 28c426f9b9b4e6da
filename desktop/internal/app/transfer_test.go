package app

import (
	"errors"
	"testing"

	"haven/shared/docid"
	"haven/shared/record"
	"haven/shared/wire"
)

// TestTransferAtTheHome: only the home's manager may move a resident, and
// only to a care home the relay named (kept across a restart, for offline
// use). The move is signed into the record; when the relay says the record
// has gone (haven-gone, transferred), the resident stays in the list as
// moved, naming the receiving home, and opening them says so.
func TestTransferAtTheHome(t *testing.T) {
	a, _, h := openApp(t, 3, "Mo Manager", managerPIN)
	id := h.Residents[1].RecordID
	if p := a.Permissions(); !p.Transfer {
		t.Fatal("the home manager may not move a resident")
	}
	if _, err := a.Transfer(id, "home-2", "moving nearer family"); !isProblem(err) {
		t.Fatalf("a move before the relay named any home: %v; want a Problem", err)
	}
	a.onTrust(wire.Trust{Anchor: testOrgPub, Homes: []wire.HomeName{{ID: "home-1", Name: "Larch House"}, {ID: "home-2", Name: "Birch Court"}}})
	if hs := a.TransferHomes(); len(hs) != 1 || hs[0].ID != "home-2" {
		t.Fatalf("homes to move to: %+v; want Birch Court alone (not this home)", hs)
	}

	a.Lock()
	if _, err := a.Unlock(staffID(t, a, "Dr Ada Quill"), gpPIN); err != nil {
		t.Fatal(err)
	}
	if a.Permissions().Transfer {
		t.Fatal("a GP may move a resident")
	}
	if _, err := a.Transfer(id, "home-2", "moving nearer family"); !errors.Is(err, record.ErrNotPermitted) && !isProblem(err) {
		t.Fatalf("a GP moved a resident: %v", err)
	}
	a.Lock()
	if _, err := a.Unlock(staffID(t, a, "Mo Manager"), managerPIN); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Transfer(id, "home-2", ""); err == nil {
		t.Fatal("a move without a reason")
	}
	if _, err := a.Transfer(id, "home-2", "moving nearer family"); err != nil {
		t.Fatal(err)
	}
	rec, _, err := a.record(id)
	if err != nil {
		t.Fatal(err)
	}
	if rec.CurrentHome != "home-2" || len(rec.Transfers) != 1 || rec.Transfers[0].By.Name != "Mo Manager" {
		t.Fatalf("after the move: current home %q, transfers %+v", rec.CurrentHome, rec.Transfers)
	}
	if _, err := a.Transfer(id, "home-2", "again"); !errors.Is(err, record.ErrTransfer) {
		t.Fatalf("a second move from a home that no longer holds the record: %v; want record.ErrTransfer", err)
	}

	// The relay takes the move and tells this computer to let both go.
	a.letGo.Add([]docid.ID{id, rec.Timeline}, wire.CodeTransferred, "Birch Court")
	for _, d := range []docid.ID{id, rec.Timeline} {
		a.letGo.drop(d)
	}
	row := rowOf(a, id)
	if row == nil || row.MovedTo != "Birch Court" || row.Held {
		t.Fatalf("the moved resident's row: %+v; want listed, moved to Birch Court", row)
	}
	var moved *MovedError
	if _, err := a.FrontSheet(id); !errors.As(err, &moved) || moved.To != "Birch Court" {
		t.Fatalf("opening a resident who moved: %v", err)
	}

	// The homes and the mark last across a restart.
	dir := a.dir
	a.Close()
	b := reopen(t, dir, "Mo Manager", managerPIN)
	if hs := b.TransferHomes(); len(hs) != 1 {
		t.Fatalf("homes after a restart: %+v", hs)
	}
	if row := rowOf(b, id); row == nil || row.MovedTo != "Birch Court" {
		t.Fatalf("the moved resident after a restart: %+v", row)
	}
}

func isProblem(err error) bool {
	var p *Problem
	return errors.As(err, &p)
}
