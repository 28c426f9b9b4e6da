package record

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"haven/shared/cert"
	"haven/shared/crdt"
)

// A resident who moves to another care home takes their record with them:
// the same document, its timeline and all their history, now held by the
// receiving home (the relay moves who holds it, and the sending home's
// computers let their copies go). The record's "home" field says where it
// was created and never changes; each move is a signed entry in the
// record's "transfers" map, written by the manager of the home that holds
// it:
//
//	transfers   map entryID → Entry (JSON) of kind KindHome, value Transfer
//
// The entries form one chain from the record's first home: each is signed
// by a manager of the home the chain has reached (their certificate's
// organisation), names a care home other than that one, and supersedes
// exactly the entry before it (none for the first). The record's current
// home is where the chain ends. The map is created by the first transfer,
// once; a change that breaks any of this is refused at the relay
// (RuleTransfer), whoever wrote it, and a reader follows only entries that
// verify, so a copy altered on a device cannot move a record by itself.

// KindHome is the kind under which transfer entries are signed. It is not
// one of Kinds: a transfer is not a decision list on the front sheet.
const KindHome Kind = "home"

// Transfer is a transfer entry's value: the receiving home.
type Transfer struct {
	To     string `json:"to"`     // the receiving home's organisation ID
	ToName string `json:"toName"` // its name, as the sending home knew it
}

// RuleTransfer: a change to the record's transfers breaks the chain
// (Detail names how: one of the Transfer… codes).
const RuleTransfer = "transfer-refused"

// Why a transfer entry does not follow the chain.
const (
	TransferNotHolder   = "not-holding-home" // signed by staff of a home that does not hold the record
	TransferNotLatest   = "not-latest"       // does not supersede exactly the last transfer
	TransferSameHome    = "same-home"        // names the home that holds the record
	TransferNotCareHome = "not-a-care-home"  // names no care home (the relay's check)
	TransferMapTwice    = "transfers-remade" // the transfers map made again, or written as a value
)

// ErrTransfer is returned by Editor.Transfer for a move the rules refuse.
var ErrTransfer = errors.New("this transfer cannot be made")

// transferFollows reports why entry e, with value t, cannot come next in a
// record's chain of transfers that has reached home with head as its last
// entry ("" before the first), or "" if it can. The guard asks it of each
// entry written, every reader of each entry read.
func transferFollows(home, head string, e Entry, t Transfer) string {
	switch {
	case e.Cert == nil || e.Cert.Org != home:
		return TransferNotHolder
	case head == "" && len(e.Supersedes) != 0, head != "" && !slices.Equal(e.Supersedes, []string{head}):
		return TransferNotLatest
	case t.To == home:
		return TransferSameHome
	}
	return ""
}

// transferEntry reads a stored transfer entry and its value.
func transferEntry(body string) (Entry, Transfer, bool) {
	var e Entry
	var t Transfer
	if json.Unmarshal([]byte(body), &e) != nil || json.Unmarshal([]byte(e.Value), &t) != nil {
		return e, t, false
	}
	return e, t, true
}

// TransferView is one move of a record, as history and printouts show it.
type TransferView struct {
	EntryID    string
	From, To   string // organisation IDs
	ToName     string
	By         Author // from the verified certificate
	At, Reason string
}

// homeChain follows a record's transfers from its first home: the current
// home, the moves in order, and problems (entries that do not verify or
// do not follow; with trust nil, entries are taken as the relay vetted
// them, unverified).
func homeChain(docID, first string, transfers map[string]any, trust *cert.Trust) (string, []TransferView, []string) {
	type cand struct {
		e Entry
		t Transfer
	}
	var all []cand
	var problems []string
	for key, v := range transfers {
		var e Entry
		if p := fromJSONOrFields(v, &e, "transfers."+key); len(p) > 0 {
			problems = append(problems, p...)
			continue
		}
		if trust != nil {
			ve, err := VerifyEntry(trust, docID, KindHome, key, e)
			if err != nil {
				problems = append(problems, "transfers."+key+": "+EntryCode(err))
				continue
			}
			e = ve
		} else if e.ID != key {
			problems = append(problems, "transfers."+key+": "+EntryCode(ErrWrongKey))
			continue
		} else if e.Cert != nil {
			e.Author = CertificateAuthor(e.Cert, e.Author.DeviceID)
		}
		var t Transfer
		if json.Unmarshal([]byte(e.Value), &t) != nil {
			problems = append(problems, "transfers."+key+": "+EntryCode(ErrBadValue))
			continue
		}
		all = append(all, cand{e, t})
	}
	home, head := first, ""
	var moves []TransferView
	for len(moves) <= len(all) {
		var next []cand
		for _, c := range all {
			if transferFollows(home, head, c.e, c.t) == "" {
				next = append(next, c)
			}
		}
		if len(next) != 1 {
			if len(next) > 1 {
				problems = append(problems, "transfers: two moves from one home")
			}
			break
		}
		c := next[0]
		moves = append(moves, TransferView{EntryID: c.e.ID, From: home, To: c.t.To, ToName: c.t.ToName,
			By: c.e.Author, At: c.e.At, Reason: c.e.Reason})
		home, head = c.t.To, c.e.ID
	}
	if len(moves) < len(all) && len(problems) == 0 {
		problems = append(problems, "transfers: an entry off the chain")
	}
	return home, moves, problems
}

// CurrentHome is the organisation that holds a resident's record now: its
// first home, or where its transfers end. Trust nil follows the entries as
// stored (the relay, whose guard verified each as it arrived).
func CurrentHome(doc *crdt.Doc, trust *cert.Trust) string {
	first, _, _ := doc.Get("home")
	raw, _, _ := doc.Get("transfers")
	id, _, _ := doc.Get("id")
	home, _, _ := homeChain(asString(id), asString(first), asMap(raw), trust)
	return home
}

// Transfer moves a resident's record to another care home: a signed entry
// by a manager of the home that holds it. The relay moves the record and
// its timeline when it takes the change.
func (e *Editor) Transfer(doc *crdt.Doc, to, toName, reason string) (string, error) {
	if e.Signer == nil || e.Signer.Certificate() == nil {
		return "", fmt.Errorf("transfer the record: %w (not yet certified)", ErrNotCertified)
	}
	c := e.Signer.Certificate()
	author := CertificateAuthor(c, e.Author.DeviceID)
	if !CanDecide(author.Role, KindHome) {
		return "", fmt.Errorf("transfer the record: %w (%s)", ErrNotPermitted, author.Role.Label())
	}
	root, err := doc.Root()
	if err != nil {
		return "", err
	}
	docID := asString(root["id"])
	home, moves, _ := homeChain(docID, asString(root["home"]), asMap(root["transfers"]), e.Rules.Trust)
	head := ""
	if len(moves) > 0 {
		head = moves[len(moves)-1].EntryID
	}
	t := Transfer{To: strings.TrimSpace(to), ToName: strings.TrimSpace(toName)}
	if err := ValidateDecision(KindHome, "", t, reason, author, e.Rules); err != nil {
		return "", err
	}
	val, _ := json.Marshal(t)
	entry := Entry{ID: NewID(), Value: string(val), Author: author, At: Timestamp(e.now()), Reason: reason,
		Supersedes: []string{}, Cert: c}
	if head != "" {
		entry.Supersedes = []string{head}
	}
	if why := transferFollows(home, head, entry, t); why != "" {
		return "", fmt.Errorf("%w: %s", ErrTransfer, why)
	}
	entry.Sig = e.Signer.Sign(EntrySigningBytes(docID, KindHome, entry))
	if _, err := VerifyEntry(e.Rules.Trust, docID, KindHome, entry.ID, entry); err != nil {
		return "", fmt.Errorf("transfer the record: %w (%v)", ErrNotCertified, err)
	}
	body, _ := json.Marshal(entry)
	_, made := root["transfers"]
	return entry.ID, e.change(doc, "transfer", []string{"transfers." + entry.ID}, func(w *crdt.Writer) error {
		if !made {
			// Only the home that holds the record writes here, and the
			// relay refuses a second map: no concurrent copy hides this.
			if err := w.EnsureMap("transfers"); err != nil {
				return err
			}
		}
		return w.Set(string(body), "transfers", entry.ID)
	})
}
