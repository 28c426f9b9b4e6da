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
