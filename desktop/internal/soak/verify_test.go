package soak

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/crypto/argon2"

	"haven/shared/crdt"
	"haven/shared/docid"
	"haven/shared/record"
	"haven/shared/repo"
	"haven/shared/store"
)

// Reading the stores. The suite opens every replica itself once its
// process has stopped: the relay's with the key file beside its data
// folder, a desktop's with the store key unsealed from its device file by
// a staff PIN, exactly as the desktop does (Argon2id, then AES-GCM; see
// desktop/internal/app/device.go). Nothing is asked of the processes, so a
// bug in what they report cannot hide a bug in what they stored.

// relayKey reads the relay's store key.
func relayKey(keyFile string) ([]byte, error) {
	b, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, err
	}
	return hex.DecodeString(strings.TrimSpace(string(b)))
}

// desktopKey unseals a desktop's store key with a staff member's PIN.
func desktopKey(dir, account, pin string) ([]byte, error) {
	raw, err := os.ReadFile(filepath.Join(dir, "device.json"))
	if err != nil {
		return nil, err
	}
	var dev struct {
		Staff []struct {
			Name   string `json:"name"`
			Salt   []byte `json:"salt"`
			Sealed []byte `json:"sealed"`
		} `json:"staff"`
	}
	if err := json.Unmarshal(raw, &dev); err != nil {
		return nil, err
	}
	for _, s := range dev.Staff {
		if s.Name != account {
			continue
		}
		block, err := aes.NewCipher(argon2.IDKey([]byte(pin), s.Salt, 3, 64*1024, 2, 32))
		if err != nil {
			return nil, err
		}
		gcm, err := cipher.NewGCM(block)
		if err != nil {
			return nil, err
		}
		if len(s.Sealed) < gcm.NonceSize() {
			return nil, errors.New("sealed key too short")
		}
		return gcm.Open(nil, s.Sealed[:gcm.NonceSize()], s.Sealed[gcm.NonceSize():], nil)
	}
	return nil, fmt.Errorf("no staff %q in %s", account, dir)
}

// docView is one document as a replica holds it.
type docView struct {
	heads   string
	content string // the document's tree as JSON (keys sorted)
	typ     string
	home    string
	doc     *crdt.Doc
}

// replica is one stopped store, loaded whole.
type replica struct {
	name  string
	relay bool // the relay's or a node's store: documents in scope are the desktops'

	docs        map[string]*docView
	loadErrs    map[string]string // documents that did not load
	quarantined []store.Quarantine
	// atOpen is what was quarantined before this suite loaded anything:
	// what the process itself found.
	atOpen []store.Quarantine
	// damage is what the store said it found missing when it opened
	// (writes lost to a damaged write-ahead log), or "".
	damage string
}

// openReplica opens the store at dir with key and loads every document
// through a repo, as the processes do (so damaged chunks are quarantined
// the same way).
func openReplica(name, dir string, key []byte) (*replica, error) {
	st, err := store.Open(dir, store.Options{Key: key})
	if err != nil {
		return nil, err
	}
	defer st.Close()
	rp := repo.New(st, repo.Options{})
	defer rp.Close()
	ids, err := st.Docs()
	if err != nil {
		return nil, err
	}
	r := &replica{name: name, docs: map[string]*docView{}, loadErrs: map[string]string{}, damage: st.Damage()}
	if r.atOpen, err = st.Quarantined(); err != nil {
		return nil, err
	}
	for _, s := range ids {
		id, err := docid.Parse(s)
		if err != nil {
			r.loadErrs[s] = "not a document ID"
			continue
		}
		h, err := rp.Open(id)
		if err != nil {
			r.loadErrs[s] = err.Error()
			continue
		}
		d := h.Doc()
		root, err := d.Root()
		if err != nil {
			r.loadErrs[s] = err.Error()
			continue
		}
		b, _ := json.Marshal(root)
		v := &docView{heads: headsString(d.Heads()), content: string(b), doc: d}
		v.typ, _ = root["type"].(string)
		v.home, _ = root["home"].(string)
		r.docs[s] = v
	}
	r.quarantined, err = st.Quarantined()
	return r, err
}

func headsString(hs []crdt.Hash) string {
	parts := make([]string, len(hs))
	for i, h := range hs {
		parts[i] = h.String()
	}
	slices.Sort(parts)
	return strings.Join(parts, ",")
}

// divergence compares the documents in scope (every document any desktop
// holds) across the replicas and returns the ones that differ, with why.
func divergence(reps []*replica) (scope int, diverged []string) {
	ids := map[string]bool{}
	for _, r := range reps {
		if r.relay {
			continue
		}
		for id := range r.docs {
			ids[id] = true
		}
	}
	sorted := make([]string, 0, len(ids))
	for id := range ids {
		sorted = append(sorted, id)
	}
	slices.Sort(sorted)
	for _, id := range sorted {
		var ref *docView
		var refName, why string
		for _, r := range reps {
			v := r.docs[id]
			switch {
			case v == nil:
				why = fmt.Sprintf("missing at %s", r.name)
			case ref == nil:
				ref, refName = v, r.name
			case v.heads != ref.heads:
				why = fmt.Sprintf("heads differ between %s and %s", refName, r.name)
			case v.content != ref.content:
				why = fmt.Sprintf("same heads but different records at %s and %s", refName, r.name)
			}
			if why != "" {
				break
			}
		}
		if why != "" {
			diverged = append(diverged, id+": "+why)
		}
	}
	return len(sorted), diverged
}

// holds reports whether replica r holds the acknowledged change k.
func (r *replica) holds(k ack) bool {
	rv := r.docs[k.Doc]
	if rv == nil || rv.typ != "resident" {
		return false
	}
	// Whether a change is held, not whether it verifies: no trust.
	rec, err := record.Read(rv.doc, nil)
	if err != nil {
		return false
	}
	switch k.Kind {
	case "resident":
		for _, v := range r.docs {
			if v.typ != "directory" || v.home != rec.Home {
				continue
			}
			if d, err := record.ReadDirectory(v.doc); err == nil {
				for _, e := range d.Residents {
					if e.ID == k.Doc {
						return true
					}
				}
			}
		}
		return false
	case "decide":
		for _, u := range rec.Decision(record.KindCPR, "").Unverified {
			if tag, ok := TagOf(u.Entry.Reason); ok && tag == k.Tag {
				return true
			}
		}
		return false
	case "note":
		tv := r.docs[rec.Timeline.String()]
		if tv == nil {
			return false
		}
		tl, err := record.ReadTimeline(tv.doc)
		if err != nil {
			return false
		}
		for _, n := range tl.Notes {
			if tag, ok := TagOf(n.Text); ok && tag == k.Tag {
				return true
			}
		}
	}
	return false
}

// lostAcks checks every acknowledged change against every replica.
func lostAcks(acks []ack, reps []*replica) (lost []string) {
	for _, k := range acks {
		var missing []string
		for _, r := range reps {
			if !r.holds(k) {
				missing = append(missing, r.name)
			}
		}
		if len(missing) > 0 {
			lost = append(lost, fmt.Sprintf("%s %s by %s on %s: missing at %s", k.Kind, k.Tag, k.Agent, k.Doc, strings.Join(missing, ", ")))
		}
	}
	return lost
}
