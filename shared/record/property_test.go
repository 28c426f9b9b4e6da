package record

import (
	"encoding/json"
	"flag"
	"fmt"
	"math/rand"
	"reflect"
	"runtime"
	"sort"
	"strings"
	"testing"

	"haven/shared/cert"
	"haven/shared/crdt"
)

var (
	seedFlag  = flag.Int64("seed", -1, "replay one seed of TestConvergenceProperty")
	seedCount = flag.Int("seeds", 1000, "how many seeds TestConvergenceProperty runs")
)

// TestConvergenceProperty: 3 to 7 replicas of one resident make random edits,
// including concurrent decisions on the same safety-critical value, and
// exchange changes in random order, both by the sync protocol (one FIFO
// queue per direction, pairs interleaved at random) and by raw change blobs
// delivered shuffled. At the end every replica has equal heads and reads an
// equal record, and the decisions nothing supersedes are exactly those the
// causal history says no later decision of the same kind had seen: every
// pair of concurrent decisions left standing is reported as a conflict.
// Every decision is signed; some replicas also plant entries that do not
// verify (unsigned, a role that may not sign the kind, a value changed
// after signing, another organisation's key), each superseding what is
// current: those are never current, never supersede anything, and are
// listed as unverified on every replica.
func TestConvergenceProperty(t *testing.T) {
	seeds := make([]int64, 0, *seedCount)
	if *seedFlag >= 0 {
		seeds = append(seeds, *seedFlag)
	} else {
		for s := int64(1); s <= int64(*seedCount); s++ {
			seeds = append(seeds, s)
		}
	}
	// Seeds run on every core; each is independent. A seed fixes the
	// history's shape, not its change hashes (IDs and actors are random), so
	// Bloom-filter false positives differ from run to run.
	type result struct {
		seed                          int64
		conflicts, resolved, restarts int
		err                           error
	}
	work := make(chan int64)
	results := make(chan result)
	for w := 0; w < runtime.GOMAXPROCS(0); w++ {
		go func() {
			for seed := range work {
				c, r, st, err := runSeed(seed)
				results <- result{seed, c, r, st, err}
			}
		}()
	}
	go func() {
		defer close(work)
		for _, s := range seeds {
			work <- s
		}
	}()
	conflicts, resolved, restarts := 0, 0, 0
	var failed []result
	for range seeds {
		r := <-results
		conflicts += r.conflicts
		resolved += r.resolved
		restarts += r.restarts
		if r.err != nil {
			failed = append(failed, r)
		}
	}
	sort.Slice(failed, func(i, j int) bool { return failed[i].seed < failed[j].seed })
	for _, f := range failed {
		t.Errorf("seed %d: %v\nreplay: go test ./shared/record -run TestConvergenceProperty -v -args -seed=%d", f.seed, f.err, f.seed)
	}
	t.Logf("%d seeds: %d decision lists ended in conflict, %d conflicts were resolved on the way; sync states began afresh %d times (told of heads they lacked, with nothing to say)", len(seeds), conflicts, resolved, restarts)
	if len(seeds) >= 100 && (conflicts == 0 || resolved == 0) {
		t.Fatalf("the generator produced %d final conflicts and %d resolutions: it no longer exercises concurrency", conflicts, resolved)
	}
}

var propKinds = []Kind{KindCPR, KindFocus, KindCeiling, KindAllergies, KindADRT, KindPlaceOfDeath}

type replica struct {
	doc  *crdt.Doc
	ed   *Editor
	sync map[int]*crdt.SyncState // peer index → state
}

type pair struct{ from, to int }

func runSeed(seed int64) (conflicts, resolved, restarts int, err error) {
	rng := rand.New(rand.NewSource(seed))
	n := 3 + rng.Intn(5)
	roles := []Role{GP, GP, AdviceClinician, HubNurse, Nurse, SeniorCarer, HomeManager}
	forged := map[string]bool{}
	origin, err := NewEditor(Author{UserID: "creator", Name: "Creator", Role: HomeManager, DeviceID: "d0"}, rules())
	if err != nil {
		return 0, 0, 0, err
	}
	base, err := origin.NewResident("home-1", identity())
	if err != nil {
		return 0, 0, 0, err
	}
	saved := base.Record.Save()
	reps := make([]*replica, n)
	for i := range reps {
		doc, err := crdt.Load(saved)
		if err != nil {
			return 0, 0, 0, err
		}
		role := roles[rng.Intn(len(roles))]
		ed, err := NewEditor(Author{UserID: fmt.Sprint("u", i), Name: fmt.Sprint("Staff ", i), Role: role, RegNo: "NMC 1", DeviceID: fmt.Sprint("d", i)}, rules())
		if err != nil {
			return 0, 0, 0, err
		}
		ed.Signer = certify(ed.Author)
		reps[i] = &replica{doc: doc, ed: ed, sync: map[int]*crdt.SyncState{}}
	}
	queues := map[pair][][]byte{}
	var blobs []struct {
		to   int
		data []byte
	}
	steps := 20 + rng.Intn(40)
	for step := 0; step < steps; step++ {
		i := rng.Intn(n)
		r := reps[i]
		switch op := rng.Intn(10); {
		case op < 4: // a safety-critical decision, often on a value others are deciding too
			k := propKinds[rng.Intn(2+rng.Intn(len(propKinds)-1))]
			state := mustRead(r.doc).Decision(k, "")
			_, err := r.ed.Decide(r.doc, k, "", randomValue(rng, k), "reason "+fmt.Sprint(step))
			if err != nil && !strings.Contains(err.Error(), ErrNotPermitted.Error()) {
				return 0, 0, 0, fmt.Errorf("Decide(%s): %w", k, err)
			}
			if err == nil && state.Conflict() {
				resolved++
			}
		case op < 5 && rng.Intn(3) == 0: // an entry planted by a device that does not play by the rules
			k := propKinds[rng.Intn(len(propKinds))]
			id, err := forge(rng, r.doc, k, randomValue(rng, k))
			if err != nil {
				return 0, 0, 0, err
			}
			forged[id] = true
		case op < 6: // an ordinary field
			id := mustRead(r.doc).Identity
			id.Room = fmt.Sprint(rng.Intn(40))
			if rng.Intn(2) == 0 {
				id.PreferredName = []string{"Edie", "Ede", "Edith"}[rng.Intn(3)]
			}
			if err := r.ed.UpdateIdentity(r.doc, id); err != nil && !strings.Contains(err.Error(), ErrNotPermitted.Error()) {
				return 0, 0, 0, err
			}
		case op < 7:
			if _, err := r.ed.AddAlert(r.doc, Alert{Text: fmt.Sprintf("alert %d", step)}); err != nil && !strings.Contains(err.Error(), ErrNotPermitted.Error()) {
				return 0, 0, 0, err
			}
		case op < 9: // one sync message along a random direction
			j := rng.Intn(n)
			if j == i {
				continue
			}
			msg, ok, err := r.state(j).Generate()
			if err != nil {
				return 0, 0, 0, err
			}
			if ok {
				queues[pair{i, j}] = append(queues[pair{i, j}], msg)
			}
			// deliver the oldest message of a random non-empty queue
			if p, ok := randomQueue(rng, queues); ok {
				if err := reps[p.to].state(p.from).Receive(queues[p][0]); err != nil {
					return 0, 0, 0, err
				}
				queues[p] = queues[p][1:]
			}
		default: // a copy of a peer's document handed over, loaded later and out of order
			j := rng.Intn(n)
			if chunk, err := reps[j].doc.Fork(); err == nil && j != i {
				blobs = append(blobs, struct {
					to   int
					data []byte
				}{i, chunk.Save()})
			}
			if len(blobs) > 0 && rng.Intn(2) == 0 {
				k := rng.Intn(len(blobs))
				if err := reps[blobs[k].to].doc.LoadIncremental(blobs[k].data); err != nil {
					return 0, 0, 0, err
				}
				blobs = append(blobs[:k], blobs[k+1:]...)
			}
		}
	}
	// Deliver what is left in random order, then sync every pair to quiescence.
	rng.Shuffle(len(blobs), func(a, b int) { blobs[a], blobs[b] = blobs[b], blobs[a] })
	for _, b := range blobs {
		if err := reps[b.to].doc.LoadIncremental(b.data); err != nil {
			return 0, 0, 0, err
		}
	}
	for p, q := range queues {
		for _, m := range q {
			if err := reps[p.to].state(p.from).Receive(m); err != nil {
				return 0, 0, 0, err
			}
		}
	}
	for round := 0; ; round++ {
		if round > 50 {
			return 0, 0, 0, fmt.Errorf("sync did not quiesce")
		}
		moved := false
		for _, i := range rng.Perm(n) {
			for _, j := range rng.Perm(n) {
				if i == j {
					continue
				}
				msg, ok, err := reps[i].state(j).Generate()
				if err != nil {
					return 0, 0, 0, err
				}
				if ok {
					moved = true
					if err := reps[j].state(i).Receive(msg); err != nil {
						return 0, 0, 0, err
					}
				}
			}
		}
		if !moved {
			break
		}
	}

	for _, r := range reps {
		for _, s := range r.sync {
			restarts += s.Restarts()
		}
	}
	heads := reps[0].doc.Heads()
	first := mustRead(reps[0].doc)
	if len(first.Problems) > 0 {
		return 0, 0, 0, fmt.Errorf("record reads with problems: %v", first.Problems)
	}
	for i, r := range reps[1:] {
		if !crdt.SameHeads(heads, r.doc.Heads()) {
			return 0, 0, 0, fmt.Errorf("replica %d heads %v differ from replica 0 %v", i+1, r.doc.Heads(), heads)
		}
		if got := mustRead(r.doc); !reflect.DeepEqual(first, got) {
			return 0, 0, 0, fmt.Errorf("replica %d reads a different record", i+1)
		}
	}
	want, err := causallyCurrent(reps[0].doc)
	if err != nil {
		return 0, 0, 0, err
	}
	unverified := map[string]bool{}
	for _, u := range first.Tampered() {
		unverified[u.Entry.ID] = true
	}
	for id := range forged {
		if !unverified[id] {
			return 0, 0, 0, fmt.Errorf("planted entry %s is not listed as unverified", id)
		}
	}
	if len(unverified) != len(forged) {
		return 0, 0, 0, fmt.Errorf("%d entries unverified, %d planted: a signed decision failed to verify", len(unverified), len(forged))
	}
	for _, k := range propKinds {
		var got []string
		for _, e := range first.Decision(k, "").Current {
			got = append(got, e.ID)
		}
		sort.Strings(got)
		if strings.Join(got, ",") != strings.Join(want[k], ",") {
			return 0, 0, 0, fmt.Errorf("%s: current entries %v, causal history says %v", k, got, want[k])
		}
		if len(want[k]) > 1 {
			conflicts++
			if !first.Decision(k, "").Conflict() {
				return 0, 0, 0, fmt.Errorf("%s: concurrent decisions not reported as a conflict", k)
			}
		}
	}
	return conflicts, resolved, restarts, nil
}

// forge writes an entry of kind k that must not verify, superseding every
// current entry, in one of the ways a device with its own code could.
func forge(rng *rand.Rand, doc *crdt.Doc, k Kind, value any) (string, error) {
	docID, _, _ := doc.Get("id")
	cur := mustRead(doc).Decision(k, "")
	val, _ := json.Marshal(value)
	carer := Author{UserID: "u-carer", Name: "Dr Claims", Role: CareWorker, DeviceID: "d-x"}
	e := Entry{ID: NewID(), Value: string(val), Author: Author{UserID: "u-x", Name: "Dr Forged", Role: GP, RegNo: "GMC 7000009", DeviceID: "d-x"},
		At: Timestamp(testNow), Reason: "forged", Supersedes: []string{}}
	for _, c := range cur.Current {
		e.Supersedes = append(e.Supersedes, c.ID)
	}
	switch rng.Intn(4) {
	case 0: // unsigned
	case 1: // a care worker's certificate
		s := certify(carer)
		e.Cert = s.Cert
		e.Sig = s.Sign(EntrySigningBytes(docID.(string), k, e))
	case 2: // signed by a GP, then the value changed
		s := certify(e.Author)
		e.Cert = s.Cert
		e.Sig = s.Sign(EntrySigningBytes(docID.(string), k, e))
		e.Value += " " // still the same JSON value, no longer what was signed
	case 3: // a certificate from another organisation's key
		_, other := cert.NewKey()
		pub, priv := cert.NewKey()
		c := cert.Certificate{ID: cert.NewID(), Org: "org-other", Staff: "u-x", Name: "Dr Forged", Role: string(GP),
			Registration: "GMC 7000009", PublicKey: pub, ValidFrom: testNow.AddDate(-1, 0, 0), ValidUntil: testNow.AddDate(1, 0, 0)}.Sign(other)
		e.Cert = &c
		e.Sig = KeySigner{Cert: &c, Key: priv}.Sign(EntrySigningBytes(docID.(string), k, e))
	}
	body, _ := json.Marshal(e)
	msg, _ := json.Marshal(ChangeMeta{V: 1, Op: "forge", By: e.Author})
	_, err := doc.Change(string(msg), testNow, func(w *crdt.Writer) error { return w.Set(string(body), "decisions", string(k), e.ID) })
	return e.ID, err
}

func (r *replica) state(peer int) *crdt.SyncState {
	if s, ok := r.sync[peer]; ok {
		return s
	}
	s := crdt.NewSyncState(r.doc)
	r.sync[peer] = s
	return s
}

func randomQueue(rng *rand.Rand, queues map[pair][][]byte) (pair, bool) {
	var ps []pair
	for p, q := range queues {
		if len(q) > 0 {
			ps = append(ps, p)
		}
	}
	if len(ps) == 0 {
		return pair{}, false
	}
	sort.Slice(ps, func(a, b int) bool { return ps[a].from*100+ps[a].to < ps[b].from*100+ps[b].to })
	return ps[rng.Intn(len(ps))], true
}

// mustRead reads a record; a walk failure cannot happen on documents this
// test writes, and would surface as a mismatch in the checks that follow.
func mustRead(d *crdt.Doc) *Record {
	r, err := Read(d, testTrust)
	if err != nil {
		return &Record{Problems: []string{err.Error()}}
	}
	return r
}

func randomValue(rng *rand.Rand, k Kind) any {
	switch k {
	case KindCPR:
		return CPRValues[rng.Intn(2)]
	case KindFocus:
		return ClinicalFocuses[rng.Intn(3)]
	case KindCeiling:
		return Ceiling{Level: CeilingLevels[rng.Intn(4)]}
	case KindAllergies:
		if rng.Intn(2) == 0 {
			return Allergies{NoneKnown: true}
		}
		return Allergies{Items: []Allergy{{Agent: []string{"Penicillin", "Latex", "Peanut"}[rng.Intn(3)], Severity: "severe"}}}
	case KindADRT:
		return ADRT{Exists: "no"}
	}
	return PlaceOfDeath{First: Places[rng.Intn(len(Places))]}
}

// causallyCurrent is the oracle: from the change graph alone (not the
// supersedes lists), the decision entries of each kind that are not an
// ancestor of another entry of the same kind.
func causallyCurrent(doc *crdt.Doc) (map[Kind][]string, error) {
	chs, err := doc.Changes()
	if err != nil {
		return nil, err
	}
	deps := map[crdt.Hash][]crdt.Hash{}
	type made struct {
		kind  Kind
		entry string
		hash  crdt.Hash
	}
	var entries []made
	for _, c := range chs {
		deps[c.Hash] = c.Deps
		meta := ChangeMeta{}
		if err := jsonUnmarshal(c.Message, &meta); err != nil || meta.Op != "decide" {
			continue
		}
		parts := strings.Split(meta.Fields[0], ".") // decisions.<kind>.<entry>
		entries = append(entries, made{Kind(parts[1]), parts[2], c.Hash})
	}
	ancestor := func(a, b crdt.Hash) bool { // is a an ancestor of b?
		seen := map[crdt.Hash]bool{}
		stack := append([]crdt.Hash(nil), deps[b]...)
		for len(stack) > 0 {
			h := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if h == a {
				return true
			}
			if !seen[h] {
				seen[h] = true
				stack = append(stack, deps[h]...)
			}
		}
		return false
	}
	out := map[Kind][]string{}
	for _, x := range entries {
		current := true
		for _, y := range entries {
			if y.kind == x.kind && y.hash != x.hash && ancestor(x.hash, y.hash) {
				current = false
				break
			}
		}
		if current {
			out[x.kind] = append(out[x.kind], x.entry)
		}
	}
	for k := range out {
		sort.Strings(out[k])
	}
	return out, nil
}

func jsonUnmarshal(s string, v any) error { return json.Unmarshal([]byte(s), v) }
