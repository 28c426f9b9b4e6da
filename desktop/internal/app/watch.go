package app

import (
	"haven/shared/crdt"
	"haven/shared/docid"
	"haven/shared/record"
)

// Every resident record this computer reads is checked against the
// record's rules over its whole history, as the relay checks each change
// it takes: a change that breaks one (a decision deleted or rewritten, the
// home or type changed) can reach this computer's store only around the
// relay, from a stolen or altered copy of the folder or a relay that does
// not keep the rules, and what it altered is then shown as such, never as
// a decision. The check follows the document: the first read takes in its
// history, later reads only what is new.
type watched struct {
	doc    *crdt.Doc // the document object the guard has followed
	heads  []crdt.Hash
	seen   map[crdt.Hash]bool
	g      *record.Guard
	broken []*record.RuleError
}

// historyCheck returns the rules the document's history breaks.
func (a *App) historyCheck(id docid.ID, doc *crdt.Doc) []*record.RuleError {
	a.watchMu.Lock()
	defer a.watchMu.Unlock()
	w := a.watches[id]
	if w == nil || w.doc != doc {
		w = &watched{doc: doc, seen: map[crdt.Hash]bool{}, g: record.NewGuard(id)}
		a.watches[id] = w
	}
	// Heads first: everything up to them is in what follows; a change
	// made meanwhile may come twice, and is skipped the second time.
	heads := doc.Heads()
	raws, err := doc.RawChangesSince(w.heads)
	if err != nil {
		a.log.Warn("reading a record's history", "doc", id.String(), "err", err)
		return w.broken
	}
	var news []*crdt.DecodedChange
	for _, raw := range raws {
		c, err := crdt.DecodeChange(raw)
		if err != nil {
			w.broken = append(w.broken, &record.RuleError{Rule: record.RuleSchema, Path: "a change that does not decode"})
			continue
		}
		if !w.seen[c.Hash] {
			w.seen[c.Hash] = true
			news = append(news, c)
		}
	}
	w.broken = append(w.broken, w.g.Observe(news)...)
	w.heads = heads
	return w.broken
}
