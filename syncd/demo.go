package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"

	"haven/assets/demo"
	"haven/shared/crdt"
	"haven/shared/docid"
	"haven/shared/record"
	"haven/syncd/internal/admin"
	"haven/syncd/internal/orgs"
)

// Demo organisation: one care home of synthetic residents, a GP hub that
// covers it, the advice line, and a second care home with no residents yet
// (where a resident may move).
const (
	demoHomeName   = "Larch House"
	demoOtherHome  = "Birch Court" // no residents yet: where a demo resident may move
	demoHubName    = "Northgate GP Hub"
	demoAdviceName = "24/7 Care Home Advice Line"
	demoResidents  = 40
	demoNotes      = 12 // notes per resident
)

// runDemo creates the demo organisation in the data folder if it has none,
// and prints its IDs as key=value lines either way. The relay must be
// stopped (the store allows one process).
func runDemo(ctx context.Context, c config, out io.Writer) error {
	st, err := c.openStore(slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	defer st.Close()
	reg, err := c.registry(st, slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	list, err := reg.Orgs()
	if err != nil {
		return err
	}
	ids := map[orgs.Kind]string{}
	other := ""
	for _, o := range list {
		if o.Kind == orgs.KindHome && o.Name == demoOtherHome {
			other = o.ID
		}
		if (o.Kind == orgs.KindHome && o.Name == demoHomeName) || (o.Kind == orgs.KindHub && o.Name == demoHubName) ||
			(o.Kind == orgs.KindAdviceLine && o.Name == demoAdviceName) {
			ids[o.Kind] = o.ID
		}
	}
	if ids[orgs.KindHome] == "" {
		start := time.Now()
		home, err := reg.CreateHome(ctx, demoHomeName, "")
		if err != nil {
			return err
		}
		// The demo's decisions are signed by staff this relay's key certified.
		h, err := demo.NewHome(home.ID, home.Name, demoResidents, demoNotes, 1, time.Now(), demo.NewCertifier(reg.Key, home.ID))
		if err != nil {
			return err
		}
		adm := &admin.Admin{Store: st, Orgs: reg}
		if err := demo.SetArea(h.Directory, time.Now()); err != nil {
			return err
		}
		store := func(id docid.ID, doc *crdt.Doc) error { return adm.StoreDocument(ctx, id, doc, home.ID) }
		if err := store(h.DirectoryID, h.Directory); err != nil {
			return err
		}
		for _, r := range h.Residents {
			if err := store(r.RecordID, r.Record); err != nil {
				return err
			}
			if err := store(r.TimelineID, r.Timeline); err != nil {
				return err
			}
		}
		if err := reg.SetDirectory(ctx, home.ID, h.DirectoryID.String()); err != nil {
			return err
		}
		ids[orgs.KindHome] = home.ID
		fmt.Fprintf(out, "# created %s with %d synthetic residents in %v\n", home.Name, demoResidents, time.Since(start).Round(time.Millisecond))
	}
	if other == "" {
		o, err := reg.CreateHome(ctx, demoOtherHome, "")
		if err != nil {
			return err
		}
		adm := &admin.Admin{Store: st, Orgs: reg}
		if _, err := adm.CreateDirectory(ctx, o, record.HomeArea{Postcode: "NW6 7HY", Borough: "Brent"}); err != nil {
			return err
		}
		other = o.ID
	}
	if ids[orgs.KindHub] == "" {
		hub, err := reg.CreateHub(ctx, demoHubName, []string{ids[orgs.KindHome]})
		if err != nil {
			return err
		}
		ids[orgs.KindHub] = hub.ID
	}
	if ids[orgs.KindAdviceLine] == "" {
		adv, err := reg.CreateAdviceLine(ctx, demoAdviceName)
		if err != nil {
			return err
		}
		ids[orgs.KindAdviceLine] = adv.ID
	}
	// The region's directory of services, as its administrator loads it.
	adm := &admin.Admin{Store: st, Orgs: reg}
	if res, err := adm.LoadServices(ctx, strings.NewReader(demo.ServicesCSV(time.Now())), demo.Region); err == nil {
		fmt.Fprintf(out, "# directory of services %s: %d services\n", res.Doc, res.Services)
	} else if !errors.Is(err, admin.ErrRelayRunning) {
		return fmt.Errorf("demo directory of services: %w", err)
	}
	// Demonstration organisations: their staff certificate requests are
	// granted without an administrator, so the demo desktops can sign.
	for _, id := range append(slices.Collect(maps.Values(ids)), other) {
		if err := reg.MarkDemo(ctx, id); err != nil {
			return err
		}
	}
	fmt.Fprintf(out, "home=%s\nhub=%s\nadvice=%s\n", ids[orgs.KindHome], ids[orgs.KindHub], ids[orgs.KindAdviceLine])
	return nil
}
