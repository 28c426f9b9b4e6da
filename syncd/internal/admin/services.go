package admin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"haven/shared/crdt"
	"haven/shared/docid"
	"haven/shared/record"
	"haven/shared/repo"
	"haven/syncd/internal/relay"
)

// ErrRelayRunning refuses to write, beside the running relay's workers, a
// document they may hold: the change could be compacted away. (With
// OnServices set, the relay's workers make the change instead.)
var ErrRelayRunning = errors.New("the relay is running: stop it, load the file, and start it again")

// ServicesLoad says what loading a services file did.
type ServicesLoad struct {
	Doc              string // the directory of services' document ID
	Created          bool   // the region had none: it was made
	Services         int    // services the file lists
	Written, Removed int    // services changed or added, and removed
}

func (a *Admin) servicesLoadFile(ctx context.Context, out io.Writer, path, region string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	res, err := a.LoadServices(ctx, f, region)
	if err != nil {
		return err
	}
	verb := "updated"
	if res.Created {
		verb = "created"
	}
	fmt.Fprintf(out, "directory of services %s %s: %d services (%d added or changed, %d removed)\n",
		res.Doc, verb, res.Services, res.Written, res.Removed)
	return nil
}

// LoadServices makes the region's directory of services hold exactly the
// services of a CSV file (record.ParseServicesCSV), creating it the first
// time. A file with any bad row is refused whole (a *record.CSVError
// naming each by line) and nothing changes: a load replaces the
// directory, so loading only the good rows would take the others' services
// off every device. A directory that exists is changed by the running
// relay (OnServices), which passes the change to every device connected,
// or, with the relay stopped, in the store.
func (a *Admin) LoadServices(ctx context.Context, r io.Reader, region string) (ServicesLoad, error) {
	list, err := record.ParseServicesCSV(r)
	if err != nil {
		return ServicesLoad{}, err
	}
	ed, err := RelayEditor()
	if err != nil {
		return ServicesLoad{}, err
	}
	res := ServicesLoad{Services: len(list)}
	id, found, err := a.servicesDoc()
	if err != nil {
		return res, err
	}
	if !found {
		if region == "" {
			region = "Region"
		}
		doc, id, err := ed.NewServices(region)
		if err != nil {
			return res, err
		}
		if res.Written, res.Removed, err = ed.LoadServices(doc, list); err != nil {
			return res, err
		}
		res.Doc, res.Created = id.String(), true
		return res, a.StoreDocument(ctx, id, doc, record.Region)
	}
	res.Doc = id.String()
	switch {
	case a.OnServices != nil:
		res.Written, res.Removed, err = a.OnServices(ctx, res.Doc, list)
		return res, err
	case a.OnDocument != nil:
		return res, ErrRelayRunning
	}
	rp := repo.New(a.Store, repo.Options{})
	defer rp.Close()
	h, err := rp.Open(id)
	if err != nil {
		return res, err
	}
	err = h.Change(ctx, func(doc *crdt.Doc) error {
		var err error
		res.Written, res.Removed, err = ed.LoadServices(doc, list)
		return err
	})
	if err != nil {
		return res, err
	}
	return res, a.markUnshared(ctx, id, record.Region)
}

// servicesDoc finds the region's directory of services: the document the
// region owns (there is one; the relay lets no device create another).
func (a *Admin) servicesDoc() (docid.ID, bool, error) {
	var id docid.ID
	found := false
	err := a.Store.Scan(relay.OwnerNamespace, "", func(doc string, owner []byte) error {
		if string(owner) == record.Region && !found {
			if d, err := docid.Parse(doc); err == nil {
				id, found = d, true
			}
		}
		return nil
	})
	return id, found, err
}
