package loadtest

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"haven/shared/docid"
)

// The region scenario: a region's care homes on one relay node or on a
// cluster, scaled down to what a small machine can drive, at several sizes
// so that a straight line through the figures can be read at the full size.

// The full region the relay is sized for, and its shape, which every
// scaled-down run keeps.
const (
	FullHomes        = 1000 // care homes in the region
	ResidentsPerHome = 60
	DevicesPerHome   = 2
	// EditorShare is one in how many connected devices is editing.
	EditorShare = 10
	// FullEditsPerMinute is the full region's edit rate: its 200 editing
	// devices at one edit a minute each.
	FullEditsPerMinute = FullHomes * DevicesPerHome / EditorShare
)

// RegionConfig shapes one region run.
type RegionConfig struct {
	Syncd string // the syncd binary
	Dir   string // where the nodes' data folders and logs go
	// Nodes is 1 for one relay, or the size of a cluster (see
	// StartHavenCluster): a home's two devices then sit on two different
	// nodes, so an edit crosses the cluster to reach the other.
	Nodes     int
	Homes     int
	Residents int // per home: a record and a timeline each
	// EditsPerMinute is the whole region's edit rate, shared equally by
	// its editors. Held at the full region's (FullEditsPerMinute) at every
	// size, it keeps the relay's edit load the full size's and gives a
	// small run enough edits to read a p99 from.
	EditsPerMinute float64
	Window         time.Duration // how long the editors edit
	// Settle is the longest the window waits, once the seeding is done,
	// for every node's workers to let go of the documents the seeding
	// loaded (-doc-idle): the window then measures the region as it runs
	// day to day, not in the wake of thousands of documents written at
	// once. 0 starts the window as the seeding ends.
	Settle  time.Duration
	Grace   time.Duration // how long after the window its edits may still arrive
	Workers int           // syncd's CRDT workers per node; 0: syncd's default
	Logf    func(format string, args ...any)
}

// Devices is how many devices the region connects: two per home.
func (c RegionConfig) Devices() int { return c.Homes * DevicesPerHome }

// Editors is how many of the devices edit: one in EditorShare, rounded,
// at least one, at most one per home.
func (c RegionConfig) Editors() int {
	return min(max((c.Devices()+EditorShare/2)/EditorShare, 1), c.Homes)
}

// EditEvery is how often each editor edits.
func (c RegionConfig) EditEvery() time.Duration {
	return time.Duration(float64(time.Minute) * float64(c.Editors()) / c.EditsPerMinute)
}

// RegionResult is one region run's figures.
type RegionResult struct {
	Nodes, Homes, Residents, Devices, Editors int
	EditEvery                                 time.Duration

	Seed time.Duration // every home's first device writing its residents, until the relay confirmed them all
	// Settled is how long after the seeding the window began (see
	// RegionConfig.Settle); Unsettled, that it began with the workers
	// still holding more than settledOpen documents on some node.
	Settled   time.Duration
	Unsettled bool
	// SeedPeak is the highest node's peak memory (PSS of its process tree)
	// from its start until every device held its home's documents.
	SeedPeak int64

	Edits    int // edits made in the window
	Arrivals int // edits read at the home's other device within Grace
	Missing  int // edits the other device had not read within Grace
	BadClock int // arrivals whose note did not carry the expected clock (should be 0)
	P50, P99 time.Duration
	Max      time.Duration
	// NodePeaks is each node's peak memory (PSS of its process tree) over
	// the edit window, every device connected.
	NodePeaks []int64
	// NodeOwn is, of each node's peak, its syncd process's own PSS; the
	// rest is its CRDT workers'.
	NodeOwn []int64
	// NodeEnd is each node's memory (PSS of its process tree) at the end of
	// the edit window's grace: what it keeps for the documents in use,
	// once the seeding's have been let go (-doc-idle).
	NodeEnd   []int64
	CPU       float64       // relay CPU seconds over the window and its grace, every node's
	Wall      time.Duration // the window and its grace, as long as the edits took to arrive
	DriverCPU float64       // this process's CPU seconds over the same span (the devices)
	OtherCPU  float64       // CPU seconds the rest of the machine used meanwhile

	BootDocs  int           // documents the new device downloaded (its home's records, timelines and directory)
	Bootstrap time.Duration // a new device of one home, from dialling to holding every one of its home's documents

	// The restart: one node killed (SIGKILL) with its devices connected,
	// then started again on its folder. Each is timed from the start.
	Listening time.Duration // until it said it listens
	Serving   time.Duration // until a device connecting afresh held a record it asked that node for
	Back      time.Duration // until every device the kill cut off was connected again
	// InStep: until every device the kill cut off knew the node holds each
	// of its home's documents as it does (client.Synced): each offers them
	// all on connecting, and the node has answered every offer.
	InStep time.Duration
	Cut    int // devices the kill cut off

	Errors []string // error messages the relay sent devices
}

// Peak is the highest node's peak memory over the edit window.
func (r RegionResult) Peak() int64 { return slicesMax(r.NodePeaks) }

// Cores is how many CPU cores the relay's nodes kept busy, together, over
// the edit window.
func (r RegionResult) Cores() float64 {
	if r.Wall <= 0 {
		return 0
	}
	return r.CPU / r.Wall.Seconds()
}

// OtherShare is the share of the machine's CPUs that other work took over
// the edit window; more than a quarter makes its figures pessimistic.
func (r RegionResult) OtherShare() float64 {
	return StepResult{OtherCPU: r.OtherCPU, Wall: r.Wall}.OtherShare()
}

// End is the highest node's memory at the end of the edit window.
func (r RegionResult) End() int64 { return slicesMax(r.NodeEnd) }

// Own is the highest node's syncd process's own part of its peak.
func (r RegionResult) Own() int64 { return slicesMax(r.NodeOwn) }

// Workers is the highest node's CRDT workers' part of its peak.
func (r RegionResult) Workers() int64 {
	var m int64
	for i := range min(len(r.NodePeaks), len(r.NodeOwn)) {
		m = max(m, r.NodePeaks[i]-r.NodeOwn[i])
	}
	return m
}

// PeakSum is every node's peak memory over the edit window, added up.
func (r RegionResult) PeakSum() int64 { return sum(r.NodePeaks) }

func slicesMax(xs []int64) int64 {
	var m int64
	for _, x := range xs {
		m = max(m, x)
	}
	return m
}

// regionHome is one care home of the run: its devices, A and B, each on
// its own node in a cluster, and what A wrote.
type regionHome struct {
	n     int // its number in the run, from 0
	id    string
	node  [DevicesPerHome]int    // the node each device connects to
	creds [DevicesPerHome]string // each device's credential
	devs  [DevicesPerHome]*device

	docs      []docid.ID // the residents' records and timelines
	timelines []docid.ID
	// edits is the home's editing and its bookkeeping (device A is client
	// 0, B client 1), set once the timelines exist; the devices' change
	// callbacks read it from the start.
	edits atomic.Pointer[liveRun]
}

// regionRun is one region run under way.
type regionRun struct {
	cfg   RegionConfig
	logf  func(format string, args ...any)
	nodes []*Server
	homes []*regionHome
	of    map[*device]*regionHome // each connected device's home; written only by connect, before the devices work
	fresh string                  // a credential for home 0's new device, at the last node
	probe string                  // a credential for the device that checks the restarted node serves
}

// RunRegion starts the nodes, enrols every home's devices, has each home's
// first device write its residents and the second download them, then
// measures an edit window, a new device's bootstrap and a node's restart,
// in that order, and stops the nodes.
func RunRegion(ctx context.Context, cfg RegionConfig) (res RegionResult, err error) {
	r := &regionRun{cfg: cfg, logf: cfg.Logf, of: map[*device]*regionHome{}}
	if r.logf == nil {
		r.logf = func(string, ...any) {}
	}
	if cfg.Nodes < 1 || cfg.Homes < 1 || cfg.Residents < 1 || cfg.EditsPerMinute <= 0 || cfg.Window <= 0 {
		return res, errors.New("a region run needs at least one node, home and resident, an edit rate and an edit window")
	}
	res = RegionResult{Nodes: cfg.Nodes, Homes: cfg.Homes, Residents: cfg.Residents, Devices: cfg.Devices(),
		Editors: cfg.Editors(), EditEvery: cfg.EditEvery()}
	if cfg.Nodes == 1 {
		srv, err := StartHaven(cfg.Syncd, cfg.Dir, cfg.Workers, "")
		if err != nil {
			return res, err
		}
		r.nodes = []*Server{srv}
	} else if r.nodes, err = StartHavenCluster(cfg.Syncd, cfg.Dir, cfg.Nodes, cfg.Workers); err != nil {
		return res, err
	}
	defer func() {
		res.Errors = r.close()
		err = errors.Join(err, stopAll(r.nodes))
	}()
	if err := r.enrol(ctx); err != nil {
		return res, fmt.Errorf("enrolling: %w", err)
	}
	r.logf("region %d nodes: %d homes made, %d devices enrolled", cfg.Nodes, cfg.Homes, cfg.Devices())
	if err := r.seed(ctx, &res); err != nil {
		return res, fmt.Errorf("seeding: %w", err)
	}
	r.logf("region %d nodes: %d residents written in %v; every device holds its home", cfg.Nodes, cfg.Homes*cfg.Residents, res.Seed.Round(time.Millisecond))
	if err := r.settle(ctx, &res); err != nil {
		return res, fmt.Errorf("settling: %w", err)
	}
	if err := r.window(ctx, &res); err != nil {
		return res, fmt.Errorf("edit window: %w", err)
	}
	r.logf("region %d nodes: %d edits, p50 %s p99 %s, %d missing", cfg.Nodes, res.Edits, ms(res.P50), ms(res.P99), res.Missing)
	if err := r.bootstrap(ctx, &res); err != nil {
		return res, fmt.Errorf("new device: %w", err)
	}
	if err := r.restart(ctx, &res); err != nil {
		return res, fmt.Errorf("restart: %w", err)
	}
	r.logf("region %d nodes: bootstrap %v, restart serving after %v", cfg.Nodes, res.Bootstrap.Round(time.Millisecond), res.Serving.Round(time.Millisecond))
	return res, nil
}

// settledOpen is how many documents a node's workers may still hold for
// the region to count as settled: one per home (a home's directory, say,
// which its devices may still be syncing).
func (c RegionConfig) settledOpen() float64 { return float64(c.Homes) }

// settledFall is the most a settled node's memory (PSS) may have fallen
// over the last settledOver: the workers hand the memory of the documents
// they let go back to the system a few seconds after (malloc_trim), and
// until they have, the window's peak would still show the seeding.
const (
	settledFall = 0.02
	settledOver = 3 * time.Second
)

// settle waits, at most Settle, until no node's workers hold more than
// settledOpen documents (haven_relay_worker_open_documents) and no node's
// memory has fallen by more than settledFall over the last settledOver,
// and records how long that took.
func (r *regionRun) settle(ctx context.Context, res *RegionResult) error {
	if r.cfg.Settle <= 0 {
		return nil
	}
	const every = 250 * time.Millisecond
	start := time.Now()
	tick := time.NewTicker(every)
	defer tick.Stop()
	// pss holds each node's memory at each tick, the last settledOver's.
	pss := make([][]int64, len(r.nodes))
	keep := int(settledOver/every) + 1
	for {
		open, falling := 0.0, false
		for i, n := range r.nodes {
			m, err := n.relay.Metrics()
			if err != nil {
				return err
			}
			v, ok := m["haven_relay_worker_open_documents"]
			if !ok {
				return errors.New("a node exports no haven_relay_worker_open_documents")
			}
			open = max(open, v)
			now, err := n.PSS()
			if err != nil {
				return err
			}
			if pss[i] = append(pss[i], now); len(pss[i]) > keep {
				pss[i] = pss[i][1:]
			}
			then := pss[i][0]
			falling = falling || len(pss[i]) < keep || float64(now) < float64(then)*(1-settledFall)
		}
		res.Settled = time.Since(start)
		if open <= r.cfg.settledOpen() && !falling {
			return nil
		}
		if res.Settled >= r.cfg.Settle {
			res.Unsettled = true
			r.logf("region %d nodes: after %v a node's workers still hold %.0f documents, or its memory is still falling; the window begins all the same", r.cfg.Nodes, r.cfg.Settle, open)
			return nil
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// stopAll stops every node at once: a cluster's last nodes would otherwise
// wait on a quorum that the first ones took away.
func stopAll(nodes []*Server) error {
	return inParallel(len(nodes), len(nodes), func(i int) error { return nodes[i].Stop() })
}

// adminAtOnce is how many admin commands run at once while enrolling:
// each is a syncd process of its own.
const adminAtOnce = 4

// enrol makes the homes and their devices' credentials, and those of home
// 0's new device and of the restart's probe. Device A of home h connects
// to node h and B to the next, modulo the nodes; a home and all its
// devices are made through its device A's node, which knows the home at
// once (the others learn it from the cluster a moment later, long before
// the devices connect).
func (r *regionRun) enrol(ctx context.Context) error {
	n := len(r.nodes)
	r.homes = make([]*regionHome, r.cfg.Homes)
	err := inParallel(r.cfg.Homes, adminAtOnce, func(h int) error {
		home := &regionHome{n: h, node: [DevicesPerHome]int{h % n, (h + 1) % n}}
		srv := r.nodes[home.node[0]]
		var err error
		if home.id, err = srv.CreateHome(fmt.Sprintf("Region Home %04d", h)); err != nil {
			return err
		}
		for k := range home.creds {
			if home.creds[k], err = srv.EnrollDevice(ctx, home.id, fmt.Sprintf("home %04d device %c", h, 'A'+k)); err != nil {
				return err
			}
		}
		r.homes[h] = home
		return nil
	})
	if err != nil {
		return err
	}
	if r.fresh, err = r.nodes[0].EnrollDevice(ctx, r.homes[0].id, "home 0000 new device"); err != nil {
		return err
	}
	r.probe, err = r.nodes[0].EnrollDevice(ctx, r.homes[0].id, "home 0000 restart probe")
	return err
}

// inParallel runs f for 0..n-1, at most limit at once, and returns their
// errors joined.
func inParallel(n, limit int, f func(i int) error) error {
	sem := make(chan struct{}, limit)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			errs[i] = f(i)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// seedTimeout bounds the seeding: every home's residents written, then
// downloaded by the home's other device.
const seedTimeout = 10 * time.Minute

// seed connects every home's device A, which writes the home's residents
// (all homes at once), then device B, which downloads them as a new
// desktop does.
func (r *regionRun) seed(ctx context.Context, res *RegionResult) error {
	ctx, cancel := context.WithTimeout(ctx, seedTimeout)
	defer cancel()
	start := time.Now()
	as, err := r.connect(0)
	if err != nil {
		return err
	}
	err = forAll(ctx, seedTimeout, as, func(ctx context.Context, d *device) error {
		return r.writeResidents(ctx, r.of[d], d)
	})
	if err != nil {
		return err
	}
	res.Seed = time.Since(start)
	for k, h := range r.homes {
		h.edits.Store(homeRun(k, h.timelines))
	}
	bs, err := r.connect(1)
	if err != nil {
		return err
	}
	err = forAll(ctx, seedTimeout, bs, func(ctx context.Context, d *device) error {
		if err := d.waitOnline(ctx); err != nil {
			return err
		}
		_, err := fetchHome(ctx, d, r.of[d].docs)
		return err
	})
	if err != nil {
		return err
	}
	for _, n := range r.nodes {
		u, err := n.Usage()
		if err != nil {
			return err
		}
		res.SeedPeak = max(res.SeedPeak, u.PeakPSS)
	}
	return nil
}

// connect starts device k of every home, each on its node.
func (r *regionRun) connect(k int) ([]*device, error) {
	var devs []*device
	for i, h := range r.homes {
		srv := r.nodes[h.node[k]]
		d, err := startDevice(deviceConfig{
			URL: srv.URL(srv.Addr()), Credential: h.creds[k], Name: fmt.Sprintf("h%04d%c", i, 'a'+k),
			OnChange: func(d *device, id docid.ID) {
				if run := h.edits.Load(); run != nil {
					run.l.arrived(k, d, id)
				}
			},
		})
		if err != nil {
			return nil, err
		}
		h.devs[k] = d
		r.of[d] = h
		devs = append(devs, d)
	}
	return devs, nil
}

// writeResidents has d admit the home's residents, a record and a timeline
// each, and waits for the relay to confirm them, seedBatch documents at a
// time. Every resident of the region has a number of its own.
func (r *regionRun) writeResidents(ctx context.Context, h *regionHome, d *device) error {
	if err := d.waitOnline(ctx); err != nil {
		return err
	}
	first := len(h.docs)
	for i := range r.cfg.Residents {
		docs, err := d.editor.NewResident(h.id, identity(h.n*r.cfg.Residents+i))
		if err != nil {
			return err
		}
		if err := d.create(ctx, docs.RecordID, docs.Record); err != nil {
			return err
		}
		if err := d.create(ctx, docs.TimelineID, docs.Timeline); err != nil {
			return err
		}
		h.docs = append(h.docs, docs.RecordID, docs.TimelineID)
		h.timelines = append(h.timelines, docs.TimelineID)
		if len(h.docs)-first >= seedBatch || i == r.cfg.Residents-1 {
			if err := d.allSynced(ctx, h.docs[first:]); err != nil {
				return err
			}
			first = len(h.docs)
		}
	}
	return nil
}

// fetchHome has d download its home's documents with Bootstrap, as a new
// desktop does, until it holds every one of ids, and returns how many it
// downloaded. A cluster node lists what it has taken in so far: a document
// written at another node a moment ago may be missing from the first list,
// so a list that lacks some is asked for again a second later.
func fetchHome(ctx context.Context, d *device, ids []docid.ID) (int, error) {
	total := 0
	for {
		n, err := d.client.Bootstrap(ctx, nil)
		if err != nil {
			return total, fmt.Errorf("%s: bootstrap: %w", d.name, err)
		}
		total += n
		wait, cancel := context.WithTimeout(ctx, time.Second)
		err = d.allHeld(wait, ids)
		cancel()
		if err == nil {
			return total, nil
		}
		if ctx.Err() != nil {
			return total, err
		}
	}
}

// homeRun is the bookkeeping of home k's edits to its timelines, made by
// its device A and read at its device B. Its stream is the home's own, so
// that each home's editor keeps a phase of its own.
func homeRun(k int, timelines []docid.ID) *liveRun {
	return &liveRun{ids: timelines, l: newLedger(timelines, DevicesPerHome, nil), seq: make([]int, DevicesPerHome), stream: uint64(k) + 1}
}

// editors are the homes whose device A edits, spread evenly over the
// homes (and so over the nodes).
func (r *regionRun) editors() []*regionHome {
	n := r.cfg.Editors()
	out := make([]*regionHome, n)
	for k := range out {
		out[k] = r.homes[k*len(r.homes)/n]
	}
	return out
}

// window has the editors edit their homes' timelines for Window, each at
// EditEvery on a random timeline, and measures each edit's arrival at the
// home's other device and the nodes' memory and CPU meanwhile.
func (r *regionRun) window(ctx context.Context, res *RegionResult) error {
	u0 := make([]usage, len(r.nodes))
	for i, n := range r.nodes {
		if err := n.ResetPeak(); err != nil {
			return fmt.Errorf("reset peak memory: %w", err)
		}
		var err error
		if u0[i], err = n.Usage(); err != nil {
			return err
		}
	}
	cpu0, machine0 := selfCPU(), machineCPU()
	log := newStepLog()
	start := time.Now()
	end := start.Add(r.cfg.Window)
	rate := 1 / r.cfg.EditEvery().Seconds()
	eds := r.editors()
	err := inParallel(len(eds), len(eds), func(k int) error {
		_, err := eds[k].edits.Load().edit(ctx, 0, eds[k].devs[0], rate, start, end, log)
		return err
	})
	log.close()
	if err != nil {
		return err
	}
	// The edits get Grace to arrive; the figures are taken then.
	grace, cancel := context.WithTimeout(ctx, r.cfg.Grace)
	defer cancel()
	select {
	case <-log.allIn:
	case <-grace.Done():
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	edits, complete, badClock, lat, _ := log.freeze()
	log.end()
	res.Edits, res.Missing, res.BadClock, res.Arrivals = edits, edits-complete, badClock, len(lat)
	res.P50, res.P99, res.Max = percentile(lat, 0.50), percentile(lat, 0.99), percentile(lat, 1)
	for i, n := range r.nodes {
		u, err := n.Usage()
		if err != nil {
			return err
		}
		res.NodePeaks = append(res.NodePeaks, u.PeakPSS)
		if len(u.Parts) > 0 {
			res.NodeOwn = append(res.NodeOwn, u.Parts[0])
		}
		end, err := n.PSS()
		if err != nil {
			return err
		}
		res.NodeEnd = append(res.NodeEnd, end)
		res.CPU += u.CPU - u0[i].CPU
	}
	res.Wall = time.Since(start)
	res.DriverCPU = selfCPU() - cpu0
	res.OtherCPU = max(machineCPU()-machine0-res.CPU-res.DriverCPU, 0)
	return nil
}

// bootstrap times a new device of home 0, at the last node (in a cluster
// one that neither of the home's devices uses), from dialling to holding
// every one of the home's documents.
func (r *regionRun) bootstrap(ctx context.Context, res *RegionResult) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	srv := r.nodes[len(r.nodes)-1]
	start := time.Now()
	d, err := dial(ctx, srv, r.fresh, "new-device")
	if err != nil {
		return err
	}
	defer d.close()
	if res.BootDocs, err = fetchHome(ctx, d, r.homes[0].docs); err != nil {
		return err
	}
	res.Bootstrap = time.Since(start)
	return nil
}

// dial starts a device of no home's pair at srv and waits until it is
// connected; the caller closes it.
func dial(ctx context.Context, srv *Server, cred, name string) (*device, error) {
	d, err := startDevice(deviceConfig{URL: srv.URL(srv.Addr()), Credential: cred, Name: name})
	if err != nil {
		return nil, err
	}
	if err := d.waitOnline(ctx); err != nil {
		d.close()
		return nil, err
	}
	return d, nil
}

// restartTimeout bounds the restart, from the kill to every device back.
const restartTimeout = 5 * time.Minute

// restart kills node 0 with its devices connected, waits until each of
// them has seen its connection go, starts the node again, and times how
// long it takes to listen, to serve a record to a device connecting afresh
// (the probe asks for one of home 0's timelines), to have every device it
// lost connected again, and to have answered every document they offered
// on connecting.
func (r *regionRun) restart(ctx context.Context, res *RegionResult) error {
	ctx, cancel := context.WithTimeout(ctx, restartTimeout)
	defer cancel()
	var cut []*device
	for _, h := range r.homes {
		for k, node := range h.node {
			if node == 0 {
				cut = append(cut, h.devs[k])
			}
		}
	}
	res.Cut = len(cut)
	srv := r.nodes[0]
	srv.Kill()
	err := forAll(ctx, restartTimeout, cut, func(ctx context.Context, d *device) error {
		return d.wait(ctx, "its connection to go", func() bool { return !d.client.Status().Online })
	})
	if err != nil {
		return err
	}
	start := time.Now()
	if err := srv.Restart(); err != nil {
		return err
	}
	res.Listening = time.Since(start)
	probe, err := dial(ctx, srv, r.probe, "probe")
	if err != nil {
		return err
	}
	defer probe.close()
	asked := r.homes[0].timelines[:1]
	probe.client.Request(asked[0])
	if err := probe.allHeld(ctx, asked); err != nil {
		return err
	}
	res.Serving = time.Since(start)
	err = forAll(ctx, restartTimeout, cut, func(ctx context.Context, d *device) error { return d.waitOnline(ctx) })
	if err != nil {
		return err
	}
	res.Back = time.Since(start)
	err = forAll(ctx, restartTimeout, cut, func(ctx context.Context, d *device) error { return d.allSynced(ctx, r.of[d].docs) })
	if err != nil {
		return err
	}
	res.InStep = time.Since(start)
	return nil
}

// close disconnects every device and returns the error messages the relay
// sent them.
func (r *regionRun) close() []string {
	var errs []string
	for _, h := range r.homes {
		if h == nil {
			continue // enrolment failed
		}
		for _, d := range h.devs {
			if d != nil {
				errs = append(errs, d.serverErrors()...)
				d.close()
			}
		}
	}
	return errs
}

// line is y = A + B·x, fitted to points with coefficient of determination
// R2: the share of the ys' variance the line explains (1 when it passes
// through every point).
type line struct{ A, B, R2 float64 }

// At reads the line at x.
func (l line) At(x float64) float64 { return l.A + l.B*x }

// fitLine fits a straight line to the points by least squares; ok is false
// unless there are at least two distinct xs.
func fitLine(xs, ys []float64) (l line, ok bool) {
	n := float64(len(xs))
	if len(xs) < 2 || len(xs) != len(ys) {
		return line{}, false
	}
	var mx, my float64
	for i := range xs {
		mx += xs[i]
		my += ys[i]
	}
	mx, my = mx/n, my/n
	var sxx, sxy, syy float64
	for i := range xs {
		sxx += (xs[i] - mx) * (xs[i] - mx)
		sxy += (xs[i] - mx) * (ys[i] - my)
		syy += (ys[i] - my) * (ys[i] - my)
	}
	if sxx == 0 || math.IsNaN(sxy) {
		return line{}, false
	}
	l = line{B: sxy / sxx, R2: 1}
	l.A = my - l.B*mx
	if syy > 0 {
		l.R2 = sxy * sxy / (sxx * syy)
	}
	return l, true
}

// RegionP99 is the region's target for an edit's p99 from one device to
// another, across nodes.
const RegionP99 = 250 * time.Millisecond

// GoodFit is the least R2, over three sizes or more, for which a line is
// taken to say what the figure does at the full size.
const GoodFit = 0.8

// The figures a projection reads from each run, in the order of
// regionFigures.
const (
	figPeak = iota
	figPeakSum
	figOwn
	figWorkers
	figEnd
	figCores
	figP99
	figBootstrap
	figServing
	figBack
	figInStep
)

// regionFigures names each figure a projection reads, with its format.
var regionFigures = []struct {
	name, format string
	of           func(RegionResult) float64
}{
	figPeak:      {"relay peak PSS MiB, highest node", "%.0f", func(r RegionResult) float64 { return float64(r.Peak()) / (1 << 20) }},
	figPeakSum:   {"relay peak PSS MiB, all nodes", "%.0f", func(r RegionResult) float64 { return float64(r.PeakSum()) / (1 << 20) }},
	figOwn:       {"relay peak PSS MiB: syncd's own, highest node", "%.0f", func(r RegionResult) float64 { return float64(r.Own()) / (1 << 20) }},
	figWorkers:   {"relay peak PSS MiB: its workers', highest node", "%.0f", func(r RegionResult) float64 { return float64(r.Workers()) / (1 << 20) }},
	figEnd:       {"relay PSS MiB at the window's end, highest node", "%.0f", func(r RegionResult) float64 { return float64(r.End()) / (1 << 20) }},
	figCores:     {"relay CPU cores busy in the window, all nodes", "%.2f", RegionResult.Cores},
	figP99:       {"edit-to-other-device p99 ms", "%.1f", func(r RegionResult) float64 { return msf(r.P99) }},
	figBootstrap: {"new device's bootstrap s", "%.2f", func(r RegionResult) float64 { return r.Bootstrap.Seconds() }},
	figServing:   {"restarted node serving s", "%.2f", func(r RegionResult) float64 { return r.Serving.Seconds() }},
	figBack:      {"restarted node's devices back s", "%.2f", func(r RegionResult) float64 { return r.Back.Seconds() }},
	figInStep:    {"restarted node's devices in step s", "%.2f", func(r RegionResult) float64 { return r.InStep.Seconds() }},
}

// regionProjection is one node count's runs read at the full region: a
// straight line through each figure against the number of homes.
type regionProjection struct {
	Nodes int
	Runs  []RegionResult // the runs it is fitted to, in the order they ran
	Lines []line         // one per regionFigures entry
}

// Sizes is how many distinct sizes the lines are fitted to.
func (p regionProjection) Sizes() int {
	seen := map[int]bool{}
	for _, r := range p.Runs {
		seen[r.Homes] = true
	}
	return len(seen)
}

// Trusted reports whether figure f's line follows the runs well enough to
// be read at the full size: three sizes or more (any two make a line) and
// an R2 of at least GoodFit.
func (p regionProjection) Trusted(f int) bool { return p.Sizes() >= 3 && p.Lines[f].R2 >= GoodFit }

// projectRegion fits a regionProjection for each node count that has runs
// at two or more sizes, in the order the node counts first appear.
func projectRegion(results []RegionResult) []regionProjection {
	var order []int
	by := map[int][]RegionResult{}
	for _, r := range results {
		if _, ok := by[r.Nodes]; !ok {
			order = append(order, r.Nodes)
		}
		by[r.Nodes] = append(by[r.Nodes], r)
	}
	var out []regionProjection
	for _, n := range order {
		p := regionProjection{Nodes: n, Runs: by[n]}
		xs := make([]float64, len(p.Runs))
		for i, r := range p.Runs {
			xs[i] = float64(r.Homes)
		}
		if _, ok := fitLine(xs, xs); !ok {
			continue // one size only: no slope
		}
		for _, f := range regionFigures {
			ys := make([]float64, len(p.Runs))
			for i, r := range p.Runs {
				ys[i] = f.of(r)
			}
			l, _ := fitLine(xs, ys)
			p.Lines = append(p.Lines, l)
		}
		out = append(out, p)
	}
	return out
}

// settled is a run's settled column.
func settled(r RegionResult) string {
	switch {
	case r.Settled == 0:
		return "-"
	case r.Unsettled:
		return fmt.Sprintf("%.1f !", r.Settled.Seconds())
	}
	return fmt.Sprintf("%.1f", r.Settled.Seconds())
}

// RegionTable prints the region runs, a row each, then each node count's
// projection to the full region and the latency target.
func RegionTable(results []RegionResult) string {
	if len(results) == 0 {
		return ""
	}
	var sb strings.Builder
	r0 := results[0]
	fmt.Fprintf(&sb, "Region: care homes of %d residents (a record and a timeline each), %d devices per home, one device in %d editing; in a cluster a home's two devices are on different nodes.\n",
		r0.Residents, DevicesPerHome, EditorShare)
	fmt.Fprintf(&sb, "The full region: %d homes, %d devices, %d editors at one edit a minute = %d edits a minute. Every run keeps the region's %.0f edits a minute: its fewer editors each edit more often (\"edit every\"; the full region's: 60 s).\n",
		FullHomes, FullHomes*DevicesPerHome, FullEditsPerMinute, FullEditsPerMinute, float64(r0.Editors)/r0.EditEvery.Minutes())
	sb.WriteString("Latency: an edit made at one device -> readable at its home's other device. Bootstrap: a new device of home 0 (in a cluster at a node neither of that home's devices uses), from dialling to holding its home's documents.\n")
	sb.WriteString("Settled: the window begins once no node's CRDT workers hold more than one document per home, the seeding's let go (-doc-idle), and no node's memory fell by over 2% in the last 3 s, or after -loadtest.region-settle regardless (marked !): the edits and memory are measured in the region's daily run, not in the wake of its homes all written at once. \"-\": began as the seeding ended.\n")
	sb.WriteString("Restart: node 0 killed (SIGKILL) with its devices connected, then started on its folder; timed from that start until it listens, serves a record to a device connecting afresh, has every device it cut off back, and has answered every document those devices offered on connecting (in step).\n\n")
	w := tabwriter.NewWriter(&sb, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "nodes\thomes\tdevices\teditors\tedit every s\tedits\tarrived\tmissing\tp50 ms\tp99 ms\tmax ms\trelay peak PSS MiB (per node)\trelay CPU-s (cores)\tdevices CPU-s\tothers CPU-s (machine)\tseed s\tseed peak PSS MiB\tsettled s\tbootstrap s (docs)\trestart: listening s\tserving s\tdevices back s (cut off)\tin step s\t")
	errs, disturbed := 0, 0
	for _, r := range results {
		others := fmt.Sprintf("%.1f (%.0f%%)", r.OtherCPU, 100*r.OtherShare())
		if r.OtherShare() > 0.25 {
			others += " !"
			disturbed++
		}
		peak := mib(r.PeakSum())
		if len(r.NodePeaks) > 1 {
			parts := make([]string, len(r.NodePeaks))
			for i, p := range r.NodePeaks {
				parts[i] = mib(p)
			}
			peak += " (" + strings.Join(parts, "+") + ")"
		}
		fmt.Fprintf(w, "%d\t%d\t%d\t%d\t%.1f\t%d\t%d\t%d\t%.1f\t%.1f\t%.1f\t%s\t%.1f (%.2f)\t%.1f\t%s\t%.1f\t%s\t%s\t%.2f (%d)\t%.2f\t%.2f\t%.2f (%d)\t%.2f\t\n",
			r.Nodes, r.Homes, r.Devices, r.Editors, r.EditEvery.Seconds(), r.Edits, r.Arrivals, r.Missing+r.BadClock,
			msf(r.P50), msf(r.P99), msf(r.Max), peak, r.CPU, r.Cores(), r.DriverCPU, others, r.Seed.Seconds(), mib(r.SeedPeak),
			settled(r), r.Bootstrap.Seconds(), r.BootDocs, r.Listening.Seconds(), r.Serving.Seconds(), r.Back.Seconds(), r.Cut, r.InStep.Seconds())
		errs += len(r.Errors)
	}
	w.Flush()
	if disturbed > 0 {
		fmt.Fprintf(&sb, "! %d of %d runs' edit windows ran while other work took over a quarter of the machine: their latency and CPU figures are pessimistic.\n", disturbed, len(results))
	}
	proj := projectRegion(results)
	if len(proj) > 0 {
		largest := 0
		for _, r := range results {
			largest = max(largest, r.Homes)
		}
		fmt.Fprintf(&sb, "\nPROJECTED, not measured: a straight line fitted (least squares) to each node count's runs against homes, read at %d homes (%d devices, %d editors); the largest run above is 1/%.0f of that.\n",
			FullHomes, FullHomes*DevicesPerHome, FullEditsPerMinute, float64(FullHomes)/float64(largest))
		fmt.Fprintf(&sb, "R2: the share of the measured spread the line explains. A line through two sizes always fits; over three or more, R2 < %.1f says the figure does not follow a line here (noise, or a curve), and its reading at %d homes is a guess.\n",
			GoodFit, FullHomes)
		fmt.Fprintf(&sb, "syncd's CRDT workers let go of the least used documents past -doc-memory (by default an eighth of the machine's memory, from 256 MiB to 16 GiB), and, past -doc-idle (5 s by default), any document nobody has synced for that long; they load them again when needed. With no settling (-loadtest.region-settle 0), the peak over the window includes the seeding's documents and the memory they took; the memory at the window's end is what the documents in use keep.\n")
		w = tabwriter.NewWriter(&sb, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(w, "nodes\tfigure\tmeasured (homes: value)\tslope per 100 homes\tR2\tat 1000 homes\t")
		for _, p := range proj {
			for f, fig := range regionFigures {
				var measured []string
				for _, r := range p.Runs {
					measured = append(measured, fmt.Sprintf("%d: "+fig.format, r.Homes, fig.of(r)))
				}
				l := p.Lines[f]
				fit := fmt.Sprintf("%.2f", l.R2)
				if p.Sizes() < 3 {
					fit = "(2 sizes)"
				}
				at := fmt.Sprintf(fig.format, l.At(FullHomes))
				if l.At(FullHomes) < 0 {
					at = "below 0"
				}
				fmt.Fprintf(w, "%d\t%s\t%s\t"+strings.Replace(fig.format, "%", "%+", 1)+"\t%s\t%s\t\n",
					p.Nodes, fig.name, strings.Join(measured, ", "), 100*l.B, fit, at)
			}
		}
		w.Flush()
	}
	sb.WriteString(regionVerdict(results, proj))
	if errs > 0 {
		fmt.Fprintf(&sb, "The relay sent the devices %d error messages.\n", errs)
	}
	sb.WriteString("Peak memory is the proportional set size (PSS, smaps_rollup) summed over each node's processes (syncd with its CRDT workers), sampled every 100 ms over the edit window; seed peak: the highest node's from its start until every device held its home.\n")
	return sb.String()
}

// regionVerdict states the latency target for the largest run across
// nodes (or on one node, said so, when no cluster ran), measured, and
// projected where the runs allow.
func regionVerdict(results []RegionResult, proj []regionProjection) string {
	// A cluster's runs before one node's; the largest run of those.
	better := func(r, than *RegionResult) bool {
		if (r.Nodes > 1) != (than.Nodes > 1) {
			return r.Nodes > 1
		}
		return r.Homes > than.Homes
	}
	best := &results[0]
	for i := range results {
		if better(&results[i], best) {
			best = &results[i]
		}
	}
	verdict := func(d time.Duration, missing int) string {
		if d <= RegionP99 && missing == 0 {
			return "met"
		}
		return "NOT met"
	}
	where := "across nodes"
	if best.Nodes == 1 {
		where = "on one node (no cluster ran)"
	}
	s := fmt.Sprintf("Target edit-to-other-device p99 <= %v %s: measured %s at %d homes on %d node(s), %d missing: %s",
		RegionP99, where, ms(best.P99), best.Homes, best.Nodes, best.Missing, verdict(best.P99, best.Missing))
	for _, p := range proj {
		if p.Nodes != best.Nodes {
			continue
		}
		at := time.Duration(p.Lines[figP99].At(FullHomes) * float64(time.Millisecond))
		if p.Trusted(figP99) {
			s += fmt.Sprintf("; projected %s at %d homes: %s", ms(at), FullHomes, verdict(at, 0))
		} else {
			s += fmt.Sprintf("; no projected verdict: the p99s measured do not follow a line (%d sizes, R2 %.2f)", p.Sizes(), p.Lines[figP99].R2)
		}
	}
	return s + ".\n"
}
