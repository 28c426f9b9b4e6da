package crdt

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"math"
	"slices"
)

// Canonical re-encodes the change's body (everything after the chunk
// header, uncompressed) as automerge-rs 0.5 writes a change it rebuilds
// from a document: the form its load compares, by hash, with the heads the
// document claims. A change whose bytes differ from this is one that a
// saved document holding it cannot load again; a change whose bytes equal
// it can be, as far as its own encoding goes. The rules mirrored here, from
// automerge's storage/change and columnar encoders:
//
//   - the other actors are exactly those the operations name (objects,
//     list positions, preds), sorted, the change's own actor first;
//   - dependencies as given (Automerge sorts them);
//   - a column that would be empty is left out, and so are the object
//     columns when every operation is on the root;
//   - run-length encoding as Automerge's RleEncoder writes it: a value
//     that repeats is a run, others are gathered into literal runs, nulls
//     into null runs (none at all if the whole column is null), every
//     number in its shortest LEB128 form.
func (c *DecodedChange) Canonical() []byte {
	own, err := hex.DecodeString(c.Actor)
	if err != nil {
		return nil
	}
	others := map[string]bool{}
	note := func(a string) {
		if a != c.Actor && a != "" {
			others[a] = true
		}
	}
	for _, op := range c.Ops {
		if op.Obj != Root {
			note(op.Obj.Actor)
		}
		if op.InList && op.Elem.Counter != 0 {
			note(op.Elem.Actor)
		}
		for _, p := range op.Pred {
			note(p.Actor)
		}
	}
	sorted := make([]string, 0, len(others))
	for a := range others {
		sorted = append(sorted, a)
	}
	slices.Sort(sorted)
	index := map[string]uint64{c.Actor: 0}
	for i, a := range sorted {
		index[a] = uint64(i + 1)
	}

	var objActor, objCtr, keyActor, keyStr, action, valMeta, predNum, predActor, markName rle
	var keyCtr, predCtr delta
	var insert, expand boolEnc
	var valRaw []byte
	allRoot := true
	for _, op := range c.Ops {
		if op.Obj == Root {
			objActor.null()
			objCtr.null()
		} else {
			allRoot = false
			objActor.uint(index[op.Obj.Actor])
			objCtr.uint(op.Obj.Counter)
		}
		switch {
		case !op.InList:
			keyStr.str(op.Key)
			keyActor.null()
			keyCtr.null()
		case op.Elem.Counter == 0:
			keyStr.null()
			keyActor.null()
			keyCtr.value(0)
		default:
			keyStr.null()
			keyActor.uint(index[op.Elem.Actor])
			keyCtr.value(int64(op.Elem.Counter))
		}
		insert.add(op.Insert)
		action.uint(uint64(op.Action))
		meta, raw := encodeValue(op.Value)
		valMeta.uint(meta)
		valRaw = append(valRaw, raw...)
		predNum.uint(uint64(len(op.Pred)))
		for _, p := range op.Pred {
			predActor.uint(index[p.Actor])
			predCtr.value(int64(p.Counter))
		}
		expand.add(op.Expand)
		if op.MarkName != "" {
			markName.str(op.MarkName)
		} else {
			markName.null()
		}
	}
	type column struct {
		spec uint64
		data []byte
	}
	var cols []column
	if !allRoot {
		cols = append(cols, column{colObjActor, objActor.finish()}, column{colObjCtr, objCtr.finish()})
	}
	cols = append(cols,
		column{colKeyActor, keyActor.finish()}, column{colKeyCtr, keyCtr.finish()}, column{colKeyStr, keyStr.finish()},
		column{colInsert, insert.finish(false)}, column{colAction, action.finish()},
		column{colValMeta, valMeta.finish()}, column{colValRaw, valRaw},
		column{colPredGroup, predNum.finish()}, column{colPredActor, predActor.finish()}, column{colPredCtr, predCtr.finish()},
		column{colExpand, expand.finish(true)}, column{colMarkName, markName.finish()})
	cols = slices.DeleteFunc(cols, func(c column) bool { return len(c.data) == 0 })

	var b bytes.Buffer
	u := func(v uint64) { b.Write(binary.AppendUvarint(nil, v)) }
	u(uint64(len(c.Deps)))
	for _, d := range c.Deps {
		b.Write(d[:])
	}
	u(uint64(len(own)))
	b.Write(own)
	u(c.Seq)
	u(c.StartOp)
	b.Write(appendSleb(nil, c.Time))
	u(uint64(len(c.Message)))
	b.WriteString(c.Message)
	u(uint64(len(sorted)))
	for _, a := range sorted {
		raw, _ := hex.DecodeString(a)
		u(uint64(len(raw)))
		b.Write(raw)
	}
	u(uint64(len(cols)))
	for _, col := range cols {
		u(col.spec)
		u(uint64(len(col.data)))
	}
	for _, col := range cols {
		b.Write(col.data)
	}
	b.Write(c.Extra)
	return b.Bytes()
}

// encodeValue is a value's metadata (length << 4 | type) and raw bytes.
func encodeValue(v Value) (uint64, []byte) {
	var raw []byte
	switch v.Kind {
	case ValNull, ValFalse, ValTrue:
	case ValUint:
		raw = binary.AppendUvarint(nil, v.Uint)
	case ValInt, ValCounter, ValTimestamp:
		raw = appendSleb(nil, v.Int)
	case ValFloat:
		raw = binary.LittleEndian.AppendUint64(nil, math.Float64bits(v.Float))
	case ValString:
		raw = []byte(v.Str)
	default:
		raw = v.Bytes
	}
	kind := uint64(v.Kind)
	if v.Kind == ValUnknown {
		kind = 15 // the decoder folds unknown codes into one; such values are never canonical
	}
	return uint64(len(raw))<<4 | kind, raw
}

// appendSleb appends v as a signed LEB128 (two's complement), shortest form.
func appendSleb(b []byte, v int64) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if (v == 0 && c&0x40 == 0) || (v == -1 && c&0x40 != 0) {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}

// rle is Automerge's run-length encoder: a value repeated is a run
// (count, value), lone values gather into a literal run (-count, values),
// nulls into a null run (0, count); a column of nothing but nulls is empty.
type rle struct {
	out     []byte
	state   int // rleEmpty, rleInitialNulls, rleNulls, rleLone, rleRun, rleLiteral
	nulls   uint64
	last    []byte   // the encoded value of a lone value or a run
	runLen  uint64   // of a run
	literal [][]byte // a literal run before last
}

const (
	rleEmpty = iota
	rleInitialNulls
	rleNulls
	rleLone
	rleRun
	rleLiteral
)

func (r *rle) uint(v uint64) { r.value(binary.AppendUvarint(nil, v)) }

func (r *rle) str(s string) {
	r.value(append(binary.AppendUvarint(nil, uint64(len(s))), s...))
}

func (r *rle) flushRun() {
	r.out = appendSleb(r.out, int64(r.runLen))
	r.out = append(r.out, r.last...)
}

func (r *rle) flushLiteral(vals [][]byte) {
	r.out = appendSleb(r.out, -int64(len(vals)))
	for _, v := range vals {
		r.out = append(r.out, v...)
	}
}

func (r *rle) flushNulls() {
	r.out = appendSleb(r.out, 0)
	r.out = binary.AppendUvarint(r.out, r.nulls)
}

// flushValues writes a pending lone value, run or literal run.
func (r *rle) flushValues() {
	switch r.state {
	case rleLone:
		r.flushLiteral([][]byte{r.last})
	case rleRun:
		r.flushRun()
	case rleLiteral:
		r.flushLiteral(append(r.literal, r.last))
		r.literal = nil
	}
}

func (r *rle) null() {
	switch r.state {
	case rleEmpty:
		r.state, r.nulls = rleInitialNulls, 1
		return
	case rleInitialNulls, rleNulls:
		r.nulls++
		return
	}
	r.flushValues()
	r.state, r.nulls = rleNulls, 1
}

func (r *rle) value(v []byte) {
	switch r.state {
	case rleEmpty:
		r.state, r.last = rleLone, v
	case rleLone:
		if bytes.Equal(r.last, v) {
			r.state, r.runLen = rleRun, 2
		} else {
			r.state, r.literal, r.last = rleLiteral, [][]byte{r.last}, v
		}
	case rleRun:
		if bytes.Equal(r.last, v) {
			r.runLen++
		} else {
			r.flushRun()
			r.state, r.last = rleLone, v
		}
	case rleLiteral:
		if bytes.Equal(r.last, v) {
			r.flushLiteral(r.literal)
			r.state, r.literal, r.runLen = rleRun, nil, 2
		} else {
			r.literal = append(r.literal, r.last)
			r.last = v
		}
	case rleInitialNulls, rleNulls:
		r.flushNulls()
		r.state, r.last = rleLone, v
	}
}

func (r *rle) finish() []byte {
	if r.state == rleNulls {
		r.flushNulls() // a column of nothing but nulls (rleInitialNulls) is left empty
	}
	r.flushValues()
	return r.out
}

// delta is Automerge's delta encoder: differences from the previous value
// (from 0), run-length encoded.
type delta struct {
	rle
	abs int64
}

func (d *delta) value(v int64) {
	d.rle.value(appendSleb(nil, v-d.abs))
	d.abs = v
}

// boolEnc is Automerge's boolean encoder: alternating run lengths,
// starting with false.
type boolEnc struct {
	out      []byte
	last     bool
	count    uint64
	anyTrue  bool
	anyValue bool
}

func (e *boolEnc) add(v bool) {
	e.anyValue = true
	if v {
		e.anyTrue = true
	}
	if v == e.last {
		e.count++
		return
	}
	e.out = binary.AppendUvarint(e.out, e.count)
	e.last, e.count = v, 1
}

// finish returns the column; maybe (the expand column) is empty when
// every value was false.
func (e *boolEnc) finish(maybe bool) []byte {
	if maybe && !e.anyTrue {
		return nil
	}
	if e.count > 0 {
		e.out = binary.AppendUvarint(e.out, e.count)
	}
	return e.out
}
