package crdt

import (
	"fmt"
	"testing"
	"time"

	"github.com/automerge/automerge-go"
)

// exchanger is one side's sync state: SyncState, or Automerge's own with
// nothing added, to show what SyncState adds.
type exchanger interface {
	Generate() ([]byte, bool, error)
	Receive([]byte) error
}

type bareState struct{ ss *automerge.SyncState }

func (b bareState) Generate() ([]byte, bool, error) {
	m, ok := b.ss.GenerateMessage()
	if !ok {
		return nil, false, nil
	}
	return m.Bytes(), true, nil
}

func (b bareState) Receive(m []byte) error {
	_, err := b.ss.ReceiveMessage(m)
	return err
}

// crossing plays two copies, a and b, that agree; then b makes a change Y
// and sends it; a takes it, makes its own change X (writing value) and
// answers. Actors and times are fixed, so value alone decides X's hash, and
// so whether X is a false positive of the Bloom filter b sent (which names
// Y): if it is, a believes b holds X and leaves it out. Then both sides
// exchange until neither has anything to say. It reports whether the
// copies ended apart, and b's fresh starts when the states are SyncStates.
func crossing(value int, bare bool) (apart bool, restarts int, err error) {
	at := time.Date(2026, 1, 1, 3, 0, 0, 0, time.UTC)
	a := New()
	if err := a.SetActor(fmt.Sprintf("%032x", 1)); err != nil {
		return false, 0, err
	}
	if _, err := a.Change("base", at, func(w *Writer) error { return w.Set("0", "x") }); err != nil {
		return false, 0, err
	}
	b, err := Load(a.Save())
	if err != nil {
		return false, 0, err
	}
	if err := b.SetActor(fmt.Sprintf("%032x", 2)); err != nil {
		return false, 0, err
	}
	var sa, sb exchanger
	var ours *SyncState
	if bare {
		sa, sb = bareState{automerge.NewSyncState(a.am)}, bareState{automerge.NewSyncState(b.am)}
	} else {
		sa, ours = NewSyncState(a), NewSyncState(b)
		sb = ours
	}
	pass := func(from, to exchanger) (bool, error) {
		m, ok, err := from.Generate()
		if err != nil || !ok {
			return false, err
		}
		return true, to.Receive(m)
	}
	quiet := func() error {
		for round := 0; round < 20; round++ {
			ab, err := pass(sa, sb)
			if err != nil {
				return err
			}
			ba, err := pass(sb, sa)
			if err != nil {
				return err
			}
			if !ab && !ba {
				return nil
			}
		}
		return fmt.Errorf("the exchange never went quiet")
	}
	if err := quiet(); err != nil {
		return false, 0, err
	}
	if _, err := b.Change("y", at.Add(time.Minute), func(w *Writer) error { return w.Set("y", "y") }); err != nil {
		return false, 0, err
	}
	if _, err := pass(sb, sa); err != nil { // Y, with a filter naming it
		return false, 0, err
	}
	if _, err := a.Change("x", at.Add(2*time.Minute), func(w *Writer) error { return w.Set(fmt.Sprint("v", value), "x") }); err != nil {
		return false, 0, err
	}
	if err := quiet(); err != nil {
		return false, 0, err
	}
	if ours != nil {
		restarts = ours.Restarts()
	}
	return !SameHeads(a.Heads(), b.Heads()), restarts, nil
}

// TestSyncDoesNotFallSilentApart: Automerge's own exchange, over a reliable
// in-order link, falls silent with two copies apart when a change is a
// false positive of the peer's Bloom filter while the peer's last message
// is unanswered: each side waits for the other. The test finds such a
// change, shows bare Automerge stuck on it, and SyncState on the very same
// history bringing both copies level.
func TestSyncDoesNotFallSilentApart(t *testing.T) {
	found := -1
	for v := 0; v < 5000 && found < 0; v++ {
		apart, _, err := crossing(v, true)
		if err != nil {
			t.Fatal(err)
		}
		if apart {
			found = v
		}
	}
	if found < 0 {
		t.Fatal("no change among 5,000 left bare Automerge apart: the history no longer reaches the case SyncState handles")
	}
	apart, restarts, err := crossing(found, false)
	if err != nil {
		t.Fatal(err)
	}
	if apart {
		t.Fatalf("value %d: SyncState left the copies apart, as bare Automerge does", found)
	}
	if restarts == 0 {
		t.Fatalf("value %d: the copies met without a fresh start, so this history does not show what SyncState adds", found)
	}
	t.Logf("value %d: bare Automerge fell silent apart; SyncState began afresh %d time(s) and both copies agree", found, restarts)
}
