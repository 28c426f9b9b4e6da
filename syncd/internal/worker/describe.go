package worker

import (
	"context"
	"errors"

	"haven/shared/crdt"
	"haven/shared/docid"
	"haven/shared/record"
)

// Description is what a stored document holds, as far as the relay needs
// to know to search the region and open records for the advice line. The
// relay process never loads a document itself; a worker reads it.
type Description struct {
	Type      string                  // "resident", "timeline", "directory", or "" for anything else
	Home      string                  // the care home it says it belongs to
	Timeline  string                  // a resident's record: its timeline's document ID
	Directory []record.DirectoryEntry // a home's directory: its residents, with their record IDs
}

// DescribeArgs names the document to describe.
type DescribeArgs struct{ Doc string }

// Describe reads a stored document on the child that owns it. Like Work, a
// crash is retried once alone; a second is an error, and the document is
// left to the replay and quarantine of its own work.
func (p *Pool) Describe(_ context.Context, doc string) (Description, error) {
	var d Description
	err := p.callOwner(doc, "Worker.Describe", DescribeArgs{Doc: doc}, &d, func() { d = Description{} })
	return d, err
}

// callOwner calls method on the child that owns doc. A crash is retried
// once alone (after reset clears the reply); a second is an error, and the
// document is left to the replay and quarantine of its own work.
func (p *Pool) callOwner(doc, method string, args, reply any, reset func()) error {
	pr := p.procFor(doc)
	err := pr.call(method, args, reply, false)
	if errors.Is(err, errCrashed) {
		reset()
		err = pr.call(method, args, reply, true)
	}
	return err
}

// open opens a document from the store, or the child's cache.
func (w *Worker) open(doc string) (*crdt.Doc, error) {
	id, err := docid.Parse(doc)
	if err != nil {
		return nil, err
	}
	h, err := w.repo.Open(id)
	if err != nil {
		return nil, err
	}
	return h.Doc(), nil
}

// Describe is the child's side: it opens the document from the store (or
// its cache) and reads the few fields asked for, tolerantly.
func (w *Worker) Describe(a DescribeArgs, d *Description) error {
	doc, err := w.open(a.Doc)
	if err != nil {
		return err
	}
	root, err := doc.Root()
	if err != nil {
		return err
	}
	typ, _ := root["type"].(string)
	home, _ := root["home"].(string)
	d.Home = home
	switch typ {
	case "directory":
		d.Type = typ
		d.Directory = record.DirectoryFromTree(root).Residents
	case "timeline":
		d.Type = typ
	case "resident":
		// A resident's record names itself and its timeline.
		tl, _ := root["timeline"].(string)
		if self, _ := root["id"].(string); self == a.Doc && tl != "" {
			d.Type, d.Timeline = typ, tl
		}
	}
	return nil
}
