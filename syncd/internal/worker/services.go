package worker

import (
	"context"
	"errors"
	"fmt"

	"haven/shared/crdt"
	"haven/shared/record"
)

// maxServicesChange bounds the change a services load may make: a region's
// directory is a few hundred services of a kilobyte each.
const maxServicesChange = 4 << 20

// ServicesArgs asks for the change that makes a region's directory of
// services hold exactly Services.
type ServicesArgs struct {
	Doc      string
	Services []record.Service
}

// ServicesReply is that change as a sync message, for the relay to give
// the engine as any peer's (vetted, stored, passed on), and what it
// changes; Msg is nil when the directory already holds the services.
type ServicesReply struct {
	Msg              []byte
	Written, Removed int
}

// ServicesChange has the child that owns the document write the change
// (the relay process never loads a document).
func (p *Pool) ServicesChange(_ context.Context, doc string, list []record.Service) (ServicesReply, error) {
	var r ServicesReply
	err := p.callOwner(doc, "Worker.ServicesChange", ServicesArgs{Doc: doc, Services: list}, &r, func() { r = ServicesReply{} })
	return r, err
}

// ServicesChange is the child's side: it writes the load on a fork of the
// document, leaving the document itself to take the change in through the
// engine.
func (w *Worker) ServicesChange(a ServicesArgs, r *ServicesReply) error {
	doc, err := w.open(a.Doc)
	if err != nil {
		return err
	}
	fork, err := doc.Fork()
	if err != nil {
		return err
	}
	if t, _, _ := fork.Get("type"); t != record.TypeServices {
		return fmt.Errorf("document %s: %w", a.Doc, record.ErrServices)
	}
	before := fork.Heads()
	ed, err := record.NewEditor(record.RelayAuthor, record.Rules{})
	if err != nil {
		return err
	}
	if r.Written, r.Removed, err = ed.LoadServices(fork, a.Services); err != nil || r.Written+r.Removed == 0 {
		return err
	}
	msg, ok, err := crdt.WithChangesSince(crdt.HeadsMessage(fork.Heads()), fork, before, maxServicesChange)
	if err != nil {
		return err
	}
	if !ok {
		return errors.New("the services change is too large to send")
	}
	r.Msg = msg
	return nil
}
