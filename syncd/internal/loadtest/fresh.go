package loadtest

import (
	"context"
	"fmt"
	"time"

	"haven/shared/crdt"
	"haven/shared/docid"
	"haven/shared/record"
)

// FreshConfig shapes the fresh-device scenario.
type FreshConfig struct {
	Records int // resident records on the server before the device arrives
	Logf    func(format string, args ...any)
	// History is how many care-plan updates each record has had beyond its
	// admission, each its own change (a long stay's record is larger and
	// has far more changes than a new one's).
	History int
	// JSClient, if set, is syncd/interop/fetch.mjs: the new device is then
	// the official JavaScript client, which asks for every record by the
	// normal protocol whichever the server, instead of Haven's own.
	JSClient string
}

// FreshResult is one server's run of the fresh-device scenario.
type FreshResult struct {
	Server     Kind
	Method     string // how the device fetched
	JSClient   bool   // the device was the official JavaScript client
	Records    int    // records the device holds at the end (all of them, or the run failed)
	Docs       int    // documents it downloaded (with syncd, the home's directory too)
	SavedBytes int64  // the records' saved size: the sum of each one's Automerge save

	Fetch              time.Duration // from dialling to holding every record
	FetchUp, FetchDown int64         // wire bytes by then, client→server and back
	// Quiet is when the last byte of the session passed (every record
	// confirmed in sync, a handshake each), measured once the wire has been
	// idle for a second.
	Quiet              time.Duration
	QuietUp, QuietDown int64

	ServerCPU  float64 // server CPU seconds from dialling until quiet
	ServerPeak int64   // server peak memory (PSS of the tree) over the same span
	PeakParts  string  // how ServerPeak divides between the server and its workers
	ServerHWM  int64   // the sum of the tree's VmHWM over the same span, for comparison
	OtherCPU   float64 // CPU seconds the rest of the machine (not server, not clients) used meanwhile
	SeedCPU    float64 // the server's CPU seconds to take the records in
	SeedPeak   int64   // and its peak memory (PSS) while doing so

	ClientCPU float64 // the JavaScript client's CPU seconds during the fetch (0 for Haven's client)

	// Failed is why the run did not finish, if it did not; the figures
	// taken before that (the seeding's, say) stand.
	Failed string
}

// WireBytes is what the fetch put on the wire, both ways.
func (r FreshResult) WireBytes() int64 { return r.FetchUp + r.FetchDown }

// RunFresh runs the fresh-device scenario against a started server: a seeding
// device creates the records, then a new device fetches them all through a
// byte-counting proxy. With syncd the device uses Bootstrap (haven-list,
// haven-fetch: stored snapshots and chunks); the JavaScript server has no
// such thing, so the device requests each document by the normal protocol,
// all at once.
func RunFresh(ctx context.Context, srv *Server, cfg FreshConfig) (FreshResult, error) {
	logf := cfg.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	res := FreshResult{Server: srv.Kind}
	creds, err := srv.Enroll(ctx, 2)
	if err != nil {
		return res, err
	}
	u0, err := srv.Usage()
	if err != nil {
		return res, err
	}
	heads, err := seedRecords(ctx, srv, creds[0], cfg.Records, cfg.History, &res.SavedBytes)
	if err != nil {
		return res, err
	}
	u1, err := srv.Usage()
	if err != nil {
		return res, err
	}
	res.SeedCPU, res.SeedPeak = u1.CPU-u0.CPU, u1.PeakPSS
	logf("%s: %d records on the server, saved size %d bytes", srv.Kind.Label(), len(heads), res.SavedBytes)

	if err := srv.ResetPeak(); err != nil {
		return res, err
	}
	if u1, err = srv.Usage(); err != nil {
		return res, err
	}
	proxy, err := startProxy(srv.Addr())
	if err != nil {
		return res, err
	}
	defer proxy.Close()
	ids := make([]docid.ID, 0, len(heads))
	for id := range heads {
		ids = append(ids, id)
	}

	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	cpu0, machine0 := selfCPU(), machineCPU()
	start := time.Now()
	var holder interface {
		heldHeads(docid.ID) ([]crdt.Hash, error)
		serverErrors() []string
	}
	if cfg.JSClient != "" {
		f, err := startFetcher(cfg.JSClient, jsClientURL(srv, proxy.Addr(), creds[1]), ids)
		if err != nil {
			return res, err
		}
		defer f.close()
		res.Method, res.JSClient, res.Docs, holder = "official JS client: a find per document", true, len(ids), f
		if start, err = f.fetch(ctx, len(ids)); err != nil {
			return res, err
		}
		res.ClientCPU = f.cpu.Seconds()
	} else {
		d, err := startDevice(deviceConfig{URL: srv.URL(proxy.Addr()), Credential: creds[1], Name: "fresh"})
		if err != nil {
			return res, err
		}
		defer d.close()
		holder = d
		if err := d.waitOnline(ctx); err != nil {
			return res, err
		}
		if srv.Kind == Haven {
			res.Method = "Bootstrap: haven-list + haven-fetch"
			if res.Docs, err = d.client.Bootstrap(ctx, nil); err != nil {
				return res, fmt.Errorf("bootstrap: %w", err)
			}
		} else {
			res.Method = "a request per document"
			for _, id := range ids {
				d.client.Request(id)
			}
			res.Docs = len(ids)
		}
		if err := d.allHeld(ctx, ids); err != nil {
			return res, err
		}
	}
	res.Fetch = time.Since(start)
	res.FetchUp, res.FetchDown = proxy.Bytes()

	// The session goes on with a sync handshake per document; let it finish.
	last := proxy.waitQuiet(ctx, time.Second)
	res.Quiet = last.Sub(start)
	res.QuietUp, res.QuietDown = proxy.Bytes()
	u2, err := srv.Usage()
	if err != nil {
		return res, err
	}
	res.ServerCPU, res.ServerPeak, res.PeakParts, res.ServerHWM = u2.CPU-u1.CPU, u2.PeakPSS, u2.peakParts(), u2.PeakRSS
	res.OtherCPU = max(machineCPU()-machine0-res.ServerCPU-(selfCPU()-cpu0), 0)

	// Every record arrived whole: the same heads as the device that wrote it.
	for id, want := range heads {
		got, err := holder.heldHeads(id)
		if err != nil {
			return res, fmt.Errorf("record %s: %w", id, err)
		}
		if !crdt.SameHeads(got, want) {
			return res, fmt.Errorf("record %s arrived with %d heads unlike the writer's %d", id, len(got), len(want))
		}
		res.Records++
	}
	if errs := holder.serverErrors(); len(errs) > 0 {
		return res, fmt.Errorf("the server sent errors: %q", errs)
	}
	return res, nil
}

// seedBatch is how many records the seeding device offers before waiting for
// the server to confirm them, keeping its send queue and the server's short.
const seedBatch = 100

// seedRecords has a device create n resident records with a little history
// each (as a care home's records have) and history care-plan updates more,
// waits for the server to confirm them, and returns each one's heads. saved
// receives their saved size.
func seedRecords(ctx context.Context, srv *Server, cred string, n, history int, saved *int64) (map[docid.ID][]crdt.Hash, error) {
	d, err := startDevice(deviceConfig{URL: srv.URL(srv.Addr()), Credential: cred, Name: "seeder"})
	if err != nil {
		return nil, err
	}
	defer d.close()
	// A thousand records of a few thousand changes each take the seeding
	// device minutes to write on two cores.
	ctx, cancel := context.WithTimeout(ctx, 20*time.Minute)
	defer cancel()
	if err := d.waitOnline(ctx); err != nil {
		return nil, err
	}
	heads := map[docid.ID][]crdt.Hash{}
	var batch []docid.ID
	for i := range n {
		id, doc, err := residentRecord(d.editor, srv.Home(), i)
		if err != nil {
			return nil, err
		}
		for h := range history {
			if err := d.editor.UpdateCarePlan(doc, record.CarePlanEntry{Domain: record.Domains[h%len(record.Domains)],
				Need: fmt.Sprintf("Needs as reviewed at review %d", h), Goal: fmt.Sprintf("Goal agreed at review %d", h),
				Support: fmt.Sprintf("How to support me, as of review %d.", h)}); err != nil {
				return nil, err
			}
		}
		*saved += int64(len(doc.Save()))
		heads[id] = doc.Heads()
		if err := d.create(ctx, id, doc); err != nil {
			return nil, err
		}
		if batch = append(batch, id); len(batch) == seedBatch || i == n-1 {
			if err := d.allSynced(ctx, batch); err != nil {
				return nil, err
			}
			batch = batch[:0]
		}
	}
	return heads, nil
}

// residentRecord is a resident's record as a home would have it after
// admission: identity, a contact, an alert and a care-plan entry, each its
// own change.
func residentRecord(ed *record.Editor, home string, n int) (docid.ID, *crdt.Doc, error) {
	docs, err := ed.NewResident(home, identity(n))
	if err != nil {
		return docid.ID{}, nil, err
	}
	doc := docs.Record
	if _, err := ed.AddContact(doc, record.Contact{Kind: "personal", Name: "Jane Resident", Relationship: "daughter",
		Role: "next-of-kin", PhoneDay: "020 7946 0000"}); err != nil {
		return docid.ID{}, nil, err
	}
	if _, err := ed.AddAlert(doc, record.Alert{Text: "Penicillin allergy: rash"}); err != nil {
		return docid.ID{}, nil, err
	}
	if err := ed.UpdateCarePlan(doc, record.CarePlanEntry{Domain: "mobility-and-falls", Need: "Unsteady when tired",
		Goal: "No falls", Support: "I like my frame within reach."}); err != nil {
		return docid.ID{}, nil, err
	}
	return docs.RecordID, doc, nil
}

// waitQuiet returns the time of the last byte through the proxy once no
// byte has passed for idle (or ctx ends).
func (p *countingProxy) waitQuiet(ctx context.Context, idle time.Duration) time.Time {
	tick := time.NewTicker(idle / 10)
	defer tick.Stop()
	for {
		last := time.Unix(0, p.last.Load())
		if time.Since(last) >= idle {
			return last
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return last
		}
	}
}
