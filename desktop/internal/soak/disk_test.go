package soak

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	osexec "os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/dgraph-io/badger/v4"

	"haven/shared/crdt"
	"haven/shared/store"
)

// Disk damage. What the requirement asks ("a corrupt or truncated chunk is
// quarantined and reported; documents still load") is about one stored
// chunk, so the fair test damages exactly one chunk's bytes as they are
// stored and leaves everything else intact: the suite stops the process
// (SIGKILL, as a crash would), opens its Badger folder directly with the
// store's key, and rewrites one chunk value (key c/<doc> 00 <seq>, see
// shared/store/keys.go) truncated or with one bit flipped, the damage that
// shared/store's own unit tests apply. Badger's own checksums cover its
// files, not what a faulty disk or controller hands back for one value, so
// the store's frame check (length and CRC-32C) is what must catch it. The
// process then restarts on its folder, the document must still load (the
// rest of its chunks), the store must quarantine the chunk and log it, and
// the final comparison must find the chunk's changes back from a peer.
//
// Raw damage to Badger's files is tried as well, on copies of the relay's
// folder so the run goes on: a flipped byte or a truncation in the
// write-ahead log (.mem) and in a table (.sst). For those the bar is that
// the store either refuses to open, or opens and quarantines what it cannot
// read: anything it loses without a word is reported as silent.

// chunkKey is shared/store's key of chunk seq of doc.
func chunkKey(doc string, seq uint64) []byte {
	k := append([]byte("c/"+doc), 0)
	return binary.BigEndian.AppendUint64(k, seq)
}

// candidate is a document with chunks that a damage may hit.
type candidate struct {
	doc  string
	seqs []uint64
}

// chunkedDocs lists the documents of home with incremental chunks.
func chunkedDocs(dir string, key []byte, home string) ([]candidate, error) {
	st, err := store.Open(dir, store.Options{Key: key})
	if err != nil {
		return nil, err
	}
	defer st.Close()
	ids, err := st.Docs()
	if err != nil {
		return nil, err
	}
	var out []candidate
	for _, id := range ids {
		d, err := st.LoadDoc(id)
		if err != nil || len(d.Chunks) == 0 {
			continue
		}
		doc := crdt.New()
		if d.Snapshot != nil {
			if doc, err = crdt.Load(d.Snapshot); err != nil {
				continue
			}
		}
		for _, c := range d.Chunks {
			doc.LoadIncremental(c.Data)
		}
		typ, _, _ := doc.Get("type")
		h, _, _ := doc.Get("home")
		if h != home || (typ != "timeline" && typ != "resident") {
			continue
		}
		c := candidate{doc: id}
		for _, ch := range d.Chunks {
			c.seqs = append(c.seqs, ch.Seq)
		}
		out = append(out, c)
	}
	return out, nil
}

// damageChunk rewrites one stored chunk value through Badger, as a disk
// fault would: "truncated" drops its last bytes, "bit-flipped" flips one
// bit of its payload.
func damageChunk(dir string, key []byte, doc string, seq uint64, how string, rng *rand.Rand) error {
	opts := badger.DefaultOptions(dir).WithEncryptionKey(key).WithBlockCacheSize(8 << 20).WithIndexCacheSize(4 << 20).
		WithSyncWrites(true).WithLogger(nil)
	db, err := badger.Open(opts)
	if err != nil {
		return err
	}
	err = db.Update(func(txn *badger.Txn) error {
		item, err := txn.Get(chunkKey(doc, seq))
		if err != nil {
			return err
		}
		v, err := item.ValueCopy(nil)
		if err != nil {
			return err
		}
		const header = 9 // the store's frame: version, length, CRC-32C
		if len(v) <= header+2 {
			return fmt.Errorf("chunk of %d bytes is too short to damage", len(v))
		}
		switch how {
		case "truncated":
			v = v[:len(v)-1-rng.IntN(min(64, len(v)-header-1))]
		case "bit-flipped":
			v[header+rng.IntN(len(v)-header)] ^= 1 << rng.IntN(8)
		default:
			return fmt.Errorf("unknown damage %q", how)
		}
		return txn.Set(chunkKey(doc, seq), v)
	})
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	return err
}

// disk damages one chunk in each of two stopped desktops' stores and two
// in the stopped relay's, restarts them, and waits for convergence; the
// final phase checks what became of the chunks.
func (h *harness) disk(rep *report) {
	t := h.t
	rep.diskRan = true
	h.healAll()
	if !h.waitFor(h.cfg.converge, h.converged) {
		t.Errorf("disk phase: no convergence before damaging stores:\n  %s", h.describe())
		return
	}
	rng := rand.New(rand.NewPCG(h.cfg.seed, 0xd15c))
	// damageStore picks targets first (listing them reads the store, which
	// must not meet a damaged chunk before the process does), then damages
	// one chunk of each of len(hows) different documents.
	damageStore := func(replica, dir string, key []byte, hows []string, which string) {
		cands, err := chunkedDocs(dir, key, h.home)
		if err != nil || len(cands) < len(hows) {
			t.Errorf("damaging %s's store: %d documents with chunks, %v", replica, len(cands), err)
			return
		}
		order := rng.Perm(len(cands))
		if which == "first" { // the document with the most chunks first
			slices.SortStableFunc(order, func(a, b int) int { return len(cands[b].seqs) - len(cands[a].seqs) })
		}
		for i, how := range hows {
			c := cands[order[i]]
			seq := c.seqs[rng.IntN(len(c.seqs))]
			switch which {
			case "last":
				seq = c.seqs[len(c.seqs)-1]
			case "first":
				seq = c.seqs[0]
			}
			if err := damageChunk(dir, key, c.doc, seq, how, rng); err != nil {
				t.Errorf("damaging %s's store: %v", replica, err)
				continue
			}
			rep.damaged = append(rep.damaged, damage{replica: replica, doc: c.doc, seq: seq, how: how})
			h.logf("damaged %s: chunk %d of %s (chunks %v) %s", replica, seq, c.doc, c.seqs, how)
		}
	}

	// The home closes for the night: the two desktops that will be damaged
	// are shut down normally while the relay runs; then the relay's host
	// loses power (SIGKILL: the folder as it is then is also the crash
	// image the raw experiments below damage, its write-ahead log holding
	// the recent writes); then the other desktops are shut down. The relay
	// and those two desktops get damaged chunks: a truncated last chunk in
	// one desktop; a bit flip in the first chunk of the other's most edited
	// document (the later chunks build on it, so the store must set them
	// aside too, and every change in them must come back from the relay);
	// and a truncated and a bit-flipped chunk anywhere in the relay's.
	// Then everything starts again.
	victims := []*agentProc{h.agents[1%len(h.agents)], h.agents[2%len(h.agents)]}
	for _, a := range victims {
		if err := a.quit(); err != nil {
			t.Errorf("disk phase: %v", err)
		}
	}
	h.relay.Kill()
	h.counts.relayKills++
	pristine := filepath.Join(h.root, "relay-copy")
	if err := copyDir(h.relay.Data(), pristine); err != nil {
		t.Errorf("copying the relay's folder: %v", err)
	}
	for _, a := range h.agents {
		if err := a.quit(); err != nil {
			t.Errorf("disk phase: %v", err)
		}
	}
	for i, a := range victims {
		key, err := desktopKey(a.dir, a.spec.account, accountPIN(a.spec.account))
		if err != nil {
			t.Errorf("%s's key: %v", a.spec.name, err)
			continue
		}
		damageStore(a.spec.name, a.dir, key, []string{[]string{"truncated", "bit-flipped"}[i]}, []string{"last", "first"}[i])
	}
	key, err := relayKey(h.relay.KeyFile())
	if err != nil {
		t.Fatal(err)
	}
	damageStore("relay", h.relay.Data(), key, []string{"truncated", "bit-flipped"}, "any")
	h.healAll()
	if !h.waitFor(h.cfg.converge, h.converged) {
		t.Errorf("disk phase: no convergence after the damage:\n  %s", h.describe())
	}

	// Reported: the store logs each chunk it quarantines (IDs, no
	// content) when the process first loads the document, which syncing
	// does soon after the restart.
	inLog := func(d damage) bool {
		logPath := h.relay.LogPath()
		if d.replica != "relay" {
			logPath = filepath.Join(h.root, "desktop-"+d.replica+".log")
		}
		b, _ := os.ReadFile(logPath)
		for _, line := range strings.Split(string(b), "\n") {
			if strings.Contains(line, "quarantined damaged data") && strings.Contains(line, d.doc) &&
				strings.Contains(line, fmt.Sprintf(`"seq":%d,`, d.seq)) {
				return true
			}
		}
		return false
	}
	h.waitFor(30*time.Second, func() bool {
		for _, d := range rep.damaged {
			if !inLog(d) {
				return false
			}
		}
		return true
	})
	for i := range rep.damaged {
		if rep.damaged[i].inLog = inLog(rep.damaged[i]); rep.damaged[i].inLog {
			rep.reportedFound++
		}
	}

	if _, err := os.Stat(pristine); err == nil {
		h.rawDamage(rep, pristine, key, rng)
	}
}

// rawDamage flips and truncates Badger's own files in copies of the
// relay's folder and classifies what the store makes of each.
func (h *harness) rawDamage(rep *report, pristine string, key []byte, rng *rand.Rand) {
	refDir := pristine + "-ref"
	if err := copyDir(pristine, refDir); err != nil {
		h.t.Errorf("raw damage: %v", err)
		return
	}
	for _, x := range []struct {
		name, glob string
		truncate   bool
	}{
		{"WAL byte flip", "*.mem", false},
		{"WAL truncated", "*.mem", true},
		{"table byte flip", "*.sst", false},
		{"table truncated", "*.sst", true},
	} {
		dir := fmt.Sprintf("%s-%s", pristine, strings.ReplaceAll(x.name, " ", "-"))
		if err := copyDir(pristine, dir); err != nil {
			h.t.Errorf("raw damage: %v", err)
			return
		}
		what, err := damageFile(dir, x.glob, x.truncate, rng)
		if err != nil {
			rep.rawOutcomes = append(rep.rawOutcomes, x.name+": not tried ("+err.Error()+")")
			continue
		}
		outcome, silent := classifyChild(refDir, dir, key)
		rep.rawOutcomes = append(rep.rawOutcomes, x.name+": "+outcome)
		if silent { // lost without a word, or crashed instead of reporting
			rep.rawSilent = append(rep.rawSilent, fmt.Sprintf("%s (%s): %s", x.name, what, outcome))
		}
		h.logf("raw damage %s (%s): %s", x.name, what, outcome)
	}
}

// damageFile flips a byte in, or truncates, the largest file matching glob,
// inside the part of it that holds data (Badger preallocates its logs).
func damageFile(dir, glob string, truncate bool, rng *rand.Rand) (string, error) {
	files, _ := filepath.Glob(filepath.Join(dir, glob))
	var path string
	var size int64
	for _, f := range files {
		if fi, err := os.Stat(f); err == nil && fi.Size() > size {
			path, size = f, fi.Size()
		}
	}
	if path == "" {
		return "", fmt.Errorf("no %s file", glob)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	used := len(bytes.TrimRight(b, "\x00"))
	if used < 64 {
		return "", fmt.Errorf("%s holds no data", filepath.Base(path))
	}
	at := used/4 + rng.IntN(used/2)
	if truncate {
		return fmt.Sprintf("%s cut at %d of %d bytes", filepath.Base(path), at, used), os.Truncate(path, int64(at))
	}
	b[at] ^= 0x20
	return fmt.Sprintf("%s byte %d of %d", filepath.Base(path), at, used), os.WriteFile(path, b, 0o600)
}

// classifyEnv makes the test binary classify one damaged copy and exit:
// Badger panics on some damage in a goroutine of its own, which no caller
// can recover, so each damaged copy is opened in a child process.
const classifyEnv = "HAVEN_SOAK_CLASSIFY"

type classifyJob struct {
	Ref, Dir string
	Key      []byte
}

type classifyResult struct {
	Outcome string
	Silent  bool
}

// runClassify is the child's side.
func runClassify(raw string) error {
	var job classifyJob
	if err := json.Unmarshal([]byte(raw), &job); err != nil {
		return err
	}
	ref, err := openReplica("reference", job.Ref, job.Key)
	if err != nil {
		return err
	}
	outcome, silent := classify(ref, job.Dir, job.Key)
	return json.NewEncoder(os.Stdout).Encode(classifyResult{outcome, silent})
}

// classifyChild classifies a damaged copy in a child process. A child
// that dies opening the copy counts against the store like silence does:
// a relay or desktop that crashes on start cannot say what is wrong.
func classifyChild(ref, dir string, key []byte) (string, bool) {
	job, _ := json.Marshal(classifyJob{Ref: ref, Dir: dir, Key: key})
	cmd := osexec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), classifyEnv+"="+string(job))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	var res classifyResult
	if err == nil && json.Unmarshal(out, &res) == nil {
		return res.Outcome, res.Silent
	}
	why := stderr.String()
	why = strings.Join(strings.Fields(why[:min(len(why), 200)]), " ")
	if len(why) > 80 {
		why = why[:80] + "…"
	}
	return fmt.Sprintf("the process CRASHED opening it (%s)", why), true
}

// classify opens a damaged copy and compares it with the reference: it
// refused to open (loud), or quarantined or failed to load something
// (reported), or holds exactly the same (the damage hit nothing in use),
// or lost something without a word (silent).
func classify(ref *replica, dir string, key []byte) (outcome string, silent bool) {
	r, err := openReplica("damaged", dir, key)
	if err != nil {
		msg := err.Error()
		if len(msg) > 70 {
			msg = msg[:70] + "…"
		}
		return "refused to open (" + msg + ")", false
	}
	var differ []string
	for id, v := range ref.docs {
		if w := r.docs[id]; w == nil || w.heads != v.heads {
			differ = append(differ, id)
		}
	}
	newQ := len(r.quarantined) - len(ref.quarantined)
	switch {
	case r.damage != "":
		return fmt.Sprintf("opened, reported the lost writes (%d docs older or missing)", len(differ)), false
	case newQ > 0 || len(r.loadErrs) > 0:
		return fmt.Sprintf("opened; %d quarantined, %d failed to load, %d docs differ", newQ, len(r.loadErrs), len(differ)), false
	case len(differ) == 0:
		return "opened; nothing in use was hit", false
	}
	slices.Sort(differ)
	return fmt.Sprintf("opened with %d of %d docs older or missing, nothing reported", len(differ), len(ref.docs)), true
}

// copyDir copies a folder of regular files (a stopped store).
func copyDir(src, dst string) error {
	if err := os.MkdirAll(dst, 0o700); err != nil {
		return err
	}
	entries, err := os.ReadDir(src)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue // the admin socket
		}
		in, err := os.Open(filepath.Join(src, e.Name()))
		if err != nil {
			return err
		}
		out, err := os.OpenFile(filepath.Join(dst, e.Name()), os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
		if err != nil {
			in.Close()
			return err
		}
		_, err = io.Copy(out, in)
		in.Close()
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	}
	return nil
}
