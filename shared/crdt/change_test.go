package crdt

import (
	"bytes"
	"compress/flate"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
	"time"
)

// decodeAll decodes every change of d made since heads.
func decodeAll(t *testing.T, d *Doc, heads []Hash) []*DecodedChange {
	t.Helper()
	raws, err := d.RawChangesSince(heads)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]*DecodedChange, len(raws))
	for i, raw := range raws {
		c, err := DecodeChange(raw)
		if err != nil {
			t.Fatalf("DecodeChange(change %d) = %v", i, err)
		}
		out[i] = c
	}
	return out
}

func TestDecodeChangeMatchesAutomerge(t *testing.T) {
	d := New()
	at := time.Date(2026, 3, 1, 9, 30, 0, 0, time.UTC)
	h1, err := d.Change("create", at, func(w *Writer) error {
		return errors.Join(
			w.Set("resident", "type"),
			w.Set(int64(-42), "n"),
			w.Set(3.5, "f"),
			w.Set(true, "ok"),
			w.Set([]byte{1, 2}, "raw"),
			w.Set(map[string]any{"cpr": map[string]any{}}, "decisions"),
		)
	})
	if err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("a long note that makes the change big enough to be compressed. ", 20)
	if _, err := d.Change("entry", at.Add(time.Hour), func(w *Writer) error {
		return errors.Join(w.Set(long, "decisions", "cpr", "e1"), w.Set("home-2", "type"))
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Change("delete", at.Add(2*time.Hour), func(w *Writer) error { return w.Delete("n") }); err != nil {
		t.Fatal(err)
	}
	chs := decodeAll(t, d, nil)
	info, err := d.Changes()
	if err != nil {
		t.Fatal(err)
	}
	if len(chs) != 3 || len(info) != 3 {
		t.Fatalf("decoded %d changes, automerge lists %d; want 3", len(chs), len(info))
	}
	for i, c := range chs {
		if c.Hash != info[i].Hash || c.Actor != info[i].Actor || c.Seq != info[i].Seq || c.Message != info[i].Message ||
			c.Time != info[i].Time.UnixMilli() || !SameHeads(c.Deps, info[i].Deps) {
			t.Errorf("change %d decoded as %+v, automerge says %+v", i, c, info[i])
		}
	}
	if chs[0].Hash != h1 {
		t.Errorf("first change hash %v, Change returned %v", chs[0].Hash, h1)
	}
	byKey := map[string]Op{}
	for _, op := range chs[0].Ops {
		byKey[op.Obj.String()+"/"+op.Key] = op
	}
	want := map[string]Value{
		"_root/type": {Kind: ValString, Str: "resident"}, "_root/n": {Kind: ValInt, Int: -42},
		"_root/f": {Kind: ValFloat, Float: 3.5}, "_root/ok": {Kind: ValTrue}, "_root/raw": {Kind: ValBytes, Bytes: []byte{1, 2}},
	}
	for k, v := range want {
		op, ok := byKey[k]
		if !ok || op.Action != ActPut || op.Value.Kind != v.Kind || op.Value.Str != v.Str || op.Value.Int != v.Int ||
			op.Value.Float != v.Float || !bytes.Equal(op.Value.Bytes, v.Bytes) || len(op.Pred) != 0 {
			t.Errorf("op %s = %+v, want a put of %+v with no pred", k, op, v)
		}
	}
	decisions, ok := byKey["_root/decisions"]
	if !ok || decisions.Action != ActMakeMap {
		t.Fatalf("no make-map op for decisions: %+v", chs[0].Ops)
	}
	cpr, ok := byKey[decisions.ID.String()+"/cpr"]
	if !ok || cpr.Action != ActMakeMap || cpr.Obj != decisions.ID {
		t.Fatalf("no make-map op for decisions.cpr inside the decisions map: %+v", chs[0].Ops)
	}
	// The second change writes into decisions.cpr and overwrites type.
	var entry, retype Op
	for _, op := range chs[1].Ops {
		switch op.Key {
		case "e1":
			entry = op
		case "type":
			retype = op
		}
	}
	if entry.Obj != cpr.ID || entry.Value.Str != long || len(entry.Pred) != 0 {
		t.Errorf("entry op %+v, want a put of the long string into %v", entry, cpr.ID)
	}
	if retype.Obj != Root || len(retype.Pred) != 1 || retype.Pred[0] != byKey["_root/type"].ID {
		t.Errorf("overwrite of type %+v, want pred %v", retype, byKey["_root/type"].ID)
	}
	del := chs[2].Ops
	if len(del) != 1 || del[0].Action != ActDelete || del[0].Key != "n" || len(del[0].Pred) != 1 || del[0].Pred[0] != byKey["_root/n"].ID {
		t.Errorf("delete decoded as %+v", del)
	}
	for i, c := range chs {
		if got, want := c.MaxOp(), c.StartOp+uint64(len(c.Ops))-1; got != want || (i > 0 && c.StartOp <= chs[i-1].MaxOp()) {
			t.Errorf("change %d: start %d max %d after previous max %d", i, c.StartOp, got, chs[i-1].MaxOp())
		}
	}
}

func TestDecodeChangeReadsCompressedChanges(t *testing.T) {
	d := New()
	if _, err := d.Change("", time.Time{}, func(w *Writer) error { return w.Set(strings.Repeat("x", 4000), "big") }); err != nil {
		t.Fatal(err)
	}
	raws, err := d.RawChangesSince(nil)
	if err != nil {
		t.Fatal(err)
	}
	raw := raws[0]
	if raw[8] != 2 {
		// Build the compressed form by hand: same checksum, body deflated.
		r := reader{b: raw, off: 9}
		r.uleb()
		var buf bytes.Buffer
		fw, _ := flate.NewWriter(&buf, flate.BestCompression)
		fw.Write(raw[r.off:])
		fw.Close()
		c := append(bytes.Clone(raw[:8]), 2)
		c = binary.AppendUvarint(c, uint64(buf.Len()))
		raw = append(c, buf.Bytes()...)
	}
	c, err := DecodeChange(raw)
	if err != nil {
		t.Fatal(err)
	}
	if c.Hash != d.Heads()[0] || len(c.Ops) != 1 || c.Ops[0].Value.Str != strings.Repeat("x", 4000) {
		t.Errorf("compressed change decoded as hash %v, ops %d", c.Hash, len(c.Ops))
	}
}

func TestDecodeChangeRefusesDamage(t *testing.T) {
	d := New()
	if _, err := d.Change("m", time.Time{}, func(w *Writer) error { return w.Set("v", "k") }); err != nil {
		t.Fatal(err)
	}
	raws, _ := d.RawChangesSince(nil)
	good := raws[0]
	resum := func(b []byte) []byte {
		r := reader{b: b, off: 9}
		r.uleb()
		sum := sha256.Sum256(b[8:])
		copy(b[4:8], sum[:4])
		return b
	}
	cases := map[string][]byte{
		"empty":           nil,
		"truncated":       good[:len(good)-3],
		"bad checksum":    append(bytes.Clone(good[:len(good)-1]), good[len(good)-1]^1),
		"column overruns": resum(append(bytes.Clone(good[:len(good)-1]), good[len(good)-1]^0x40)),
	}
	for name, b := range cases {
		if _, err := DecodeChange(b); !errors.Is(err, ErrBadChange) {
			t.Errorf("%s: DecodeChange = %v, want ErrBadChange", name, err)
		}
	}
}

// TestCanonicalMatchesAutomerge: every change Automerge itself writes, of
// every kind of operation, re-encodes to exactly its own bytes.
func TestCanonicalMatchesAutomerge(t *testing.T) {
	d := New()
	at := time.Date(2026, 3, 1, 9, 30, 0, 0, time.UTC)
	steps := []func(w *Writer) error{
		func(w *Writer) error {
			return errors.Join(w.Set("resident", "type"), w.Set(int64(1), "schema"), w.Set(map[string]any{"a": "x", "b": int64(-3), "c": 2.5, "d": true, "e": nil}, "m"),
				w.Set([]any{"one", "two", int64(3)}, "list"), w.Set([]byte{0, 1, 2}, "raw"))
		},
		func(w *Writer) error { return errors.Join(w.Set("y", "m", "a"), w.Set(int64(1000000), "m", "big")) },
		func(w *Writer) error { return w.Delete("m", "b") },
		func(w *Writer) error { return w.Set(strings.Repeat("long text ", 100), "m", "long") },
		func(w *Writer) error {
			for i := 0; i < 40; i++ {
				if err := w.Set(int64(i%3), "m", "k"+strings.Repeat("x", i%5)); err != nil {
					return err
				}
			}
			return nil
		},
	}
	for i, step := range steps {
		if _, err := d.Change("", at.Add(time.Duration(i)*time.Minute), step); err != nil {
			t.Fatal(err)
		}
	}
	// A second actor whose change overwrites the first's: preds name it.
	f, _ := d.Fork()
	if _, err := f.Change("other", at, func(w *Writer) error { return errors.Join(w.Set("z", "m", "a"), w.Delete("raw")) }); err != nil {
		t.Fatal(err)
	}
	if err := d.Merge(f); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Change("after", at, func(w *Writer) error { return w.Set("w", "m", "a") }); err != nil {
		t.Fatal(err)
	}
	for i, c := range decodeAll(t, d, nil) {
		if !c.IsCanonical() {
			t.Errorf("change %d (%d ops): canonical re-encoding differs:\n got %x\nwant %x", i, len(c.Ops), c.Canonical(), c.body)
		}
	}
}

// TestNonCanonicalChangesAreNoticed: the same change with a number written
// in a longer LEB128 form, or an actor listed that no operation names,
// still decodes, but is not canonical.
func TestNonCanonicalChangesAreNoticed(t *testing.T) {
	d := New()
	if _, err := d.Change("m", time.Unix(1000, 0), func(w *Writer) error { return w.Set("v", "k") }); err != nil {
		t.Fatal(err)
	}
	raws, _ := d.RawChangesSince(nil)
	c, err := DecodeChange(raws[0])
	if err != nil || !c.IsCanonical() {
		t.Fatalf("the original: %v, canonical %v", err, c.IsCanonical())
	}
	// seq 1 as 0x81 0x00: the same number in two bytes.
	b := bytes.Clone(c.body)
	r := reader{b: b}
	r.hashList()
	r.bytes() // actor
	seqAt := r.off
	long := append(append(bytes.Clone(b[:seqAt]), 0x81, 0x00), b[seqAt+1:]...)
	// An extra actor nobody names.
	r2 := reader{b: b}
	r2.hashList()
	r2.bytes()
	r2.uleb()
	r2.uleb()
	r2.sleb()
	r2.bytes()
	actorsAt := r2.off
	extra := append(append(bytes.Clone(b[:actorsAt]), 1, 2, 0xaa, 0xbb), b[actorsAt+1:]...)
	for name, body := range map[string][]byte{"long LEB128": long, "an actor nobody names": extra} {
		chunk := append(bytes.Clone(changeMagic[:]), 0, 0, 0, 0, 1)
		chunk = binary.AppendUvarint(chunk, uint64(len(body)))
		chunk = append(chunk, body...)
		sum := sha256.Sum256(chunk[8:])
		copy(chunk[4:8], sum[:4])
		nc, err := DecodeChange(chunk)
		if err != nil {
			t.Errorf("%s: %v; want it to decode", name, err)
			continue
		}
		if nc.IsCanonical() {
			t.Errorf("%s: reported canonical", name)
		}
	}
}

// FuzzDecodeChange: DecodeChange never panics on bytes from the network,
// and what it accepts as canonical decodes again, from its own canonical
// form, to the same operations.
func FuzzDecodeChange(f *testing.F) {
	d := New()
	d.Change("seed", time.Unix(1000, 0), func(w *Writer) error {
		return errors.Join(w.Set("resident", "type"), w.Set(map[string]any{"a": int64(1), "b": "x"}, "m"), w.Set([]any{"l"}, "list"))
	})
	d.Change("", time.Unix(2000, 0), func(w *Writer) error { return errors.Join(w.Delete("m", "a"), w.Set(2.5, "m", "c")) })
	raws, _ := d.RawChangesSince(nil)
	for _, r := range raws {
		f.Add(r)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := DecodeChange(b)
		if err != nil || !c.IsCanonical() {
			return
		}
		again := append(bytes.Clone(b[:8]), 1)
		again = binary.AppendUvarint(again, uint64(len(c.body)))
		again = append(again, c.Canonical()...)
		c2, err := DecodeChange(again)
		if err != nil {
			t.Fatalf("the canonical form of an accepted change does not decode: %v", err)
		}
		if len(c2.Ops) != len(c.Ops) || c2.Hash != c.Hash {
			t.Fatalf("canonical form decodes differently: %d ops vs %d", len(c2.Ops), len(c.Ops))
		}
	})
}

func TestSyncMessageChangesAndHasChange(t *testing.T) {
	base := New()
	if _, err := base.Change("", time.Time{}, func(w *Writer) error { return w.Set("v", "k") }); err != nil {
		t.Fatal(err)
	}
	a, _ := base.Fork()
	if _, err := a.Change("", time.Time{}, func(w *Writer) error { return w.Set("w", "k") }); err != nil {
		t.Fatal(err)
	}
	ss, _ := SyncStateSharing(a, base.Heads())
	msg, ok, err := ss.Generate()
	if err != nil || !ok {
		t.Fatal(err)
	}
	msg, added, err := WithChangesSince(msg, a, base.Heads(), 1<<20)
	if err != nil || !added {
		t.Fatalf("the change was not added to the message: %v", err)
	}
	chs, err := SyncMessageChanges(msg)
	if err != nil || len(chs) != 1 {
		t.Fatalf("SyncMessageChanges = %d changes, %v", len(chs), err)
	}
	c, err := DecodeChange(chs[0])
	if err != nil || c.Hash != a.Heads()[0] {
		t.Fatalf("the message's change: %v", err)
	}
	b, _ := Load(base.Save())
	if b.HasChange(c.Hash) || !b.HasChange(base.Heads()[0]) {
		t.Fatal("HasChange does not tell the base's change from the new one")
	}
	if err := b.ApplyChanges(chs[0]); err != nil || !b.HasChange(c.Hash) {
		t.Fatalf("after applying: %v, holds %v", err, b.HasChange(c.Hash))
	}
	if _, err := SyncMessageChanges([]byte{0x42, 5}); err == nil {
		t.Fatal("a truncated message read without error")
	}
}
