package crdt

import (
	"bytes"
	"compress/flate"
	"errors"
	"fmt"
	"io"
)

// This file reads how many changes and operations saved Automerge bytes
// hold, without Automerge and without decoding the operations: what a
// loaded document costs in memory follows those counts (each change is kept
// whole in the document's history, each operation in its op set), not the
// saved size, which compresses a long history of small changes well.
//
// Saved bytes are one or more chunks, each magic (4), checksum (4), type
// (1: 0 a whole document, 1 a change, 2 a change compressed whole with raw
// DEFLATE), length (uLEB), body. A document chunk's body is
//
//	actors          uLEB count, then each as uLEB length and bytes
//	heads           uLEB count, then 32-byte hashes
//	change columns  uLEB count, then (spec uLEB, length uLEB) pairs
//	op columns      the same
//	column data     the change columns' bytes, then the op columns', in order
//	head indexes    (not read here)
//
// A document's change columns hold a row per change and its op columns a
// row per operation of its op set; a change chunk (change.go) holds one
// change and an op column row per operation. A column spec is id<<4 |
// deflate<<3 | type; a deflated column's bytes are raw DEFLATE. Rows are
// counted from a run-length encoded column's run headers, skipping the
// values, so the cost is in proportion to the column's bytes, not to what
// it describes.

// Shape is what saved bytes hold: their changes and operations.
type Shape struct {
	Changes int64
	Ops     int64
}

// Add is s and t together: the shape of both chunks' bytes concatenated.
func (s Shape) Add(t Shape) Shape { return Shape{s.Changes + t.Changes, s.Ops + t.Ops} }

// Sub is s without t, never below zero: what is left of s once chunks of
// shape t are folded into a snapshot counted elsewhere.
func (s Shape) Sub(t Shape) Shape {
	return Shape{max(s.Changes-t.Changes, 0), max(s.Ops-t.Ops, 0)}
}

// ErrBadShape is wrapped by ShapeOf's errors.
var ErrBadShape = errors.New("crdt: saved bytes not readable")

// Column specs ShapeOf counts rows of: a document's change actor column
// (id 0, type actor) has a row per change, and the action column (id 4,
// type uLEB), in a document's op columns and in a change's alike, a row per
// operation.
const (
	specChangeActor = 0<<4 | 1
	specAction      = 4<<4 | 2
	specDeflate     = 1 << 3
)

// maxShapeInflated bounds what one deflated column may inflate to while
// counting: a column of a document within the relay's size limit is far
// smaller, and the bound keeps a crafted one from costing more.
const maxShapeInflated = 64 << 20

// ShapeOf counts the changes and operations in saved bytes: a saved
// document (Doc.Save), a chunk of changes (Doc.SaveSince, Automerge's
// change chunks behind a header of their hashes), or any concatenation of
// them. It does not
// check checksums or decode operations; it never panics, and bytes it
// cannot read are an error wrapping ErrBadShape.
func ShapeOf(b []byte) (Shape, error) {
	var s Shape
	r := reader{b: b}
	for r.off < len(b) {
		start := r.off
		if bytes.HasPrefix(b[r.off:], []byte(chunkMagic)) {
			// SaveSince's header: the hashes of the changes that follow.
			r.off += len(chunkMagic)
			if err := r.hashes("chunk"); err != nil {
				return s, fmt.Errorf("%w: chunk at byte %d: %v", ErrBadShape, start, err)
			}
			continue
		}
		if len(b)-r.off < 10 || [4]byte(b[r.off:r.off+4]) != changeMagic {
			return s, fmt.Errorf("%w: no chunk at byte %d", ErrBadShape, start)
		}
		r.off += 8
		typ, _ := r.byte()
		body, ok := r.bytes()
		if !ok {
			return s, fmt.Errorf("%w: chunk at byte %d: length", ErrBadShape, start)
		}
		var t Shape
		var err error
		switch typ {
		case 0:
			t, err = documentShape(body)
		case 1:
			t, err = changeShape(body)
		case 2:
			var inflated []byte
			if inflated, err = inflate(body); err == nil {
				t, err = changeShape(inflated)
			}
		default:
			err = fmt.Errorf("chunk type %d", typ)
		}
		if err != nil {
			return s, fmt.Errorf("%w: chunk at byte %d: %v", ErrBadShape, start, err)
		}
		s = s.Add(t)
	}
	return s, nil
}

// documentShape reads a document chunk's body.
func documentShape(body []byte) (Shape, error) {
	r := reader{b: body}
	if !skipList(&r) {
		return Shape{}, errors.New("actors")
	}
	n, ok := r.uleb()
	if !ok || n > uint64(len(body)-r.off)/32 {
		return Shape{}, errors.New("heads")
	}
	r.off += int(n) * 32
	changeCols, ok1 := columnSpecs(&r)
	opCols, ok2 := columnSpecs(&r)
	if !ok1 || !ok2 {
		return Shape{}, errors.New("column lists")
	}
	changes, err := rows(&r, changeCols, specChangeActor)
	if err != nil {
		return Shape{}, fmt.Errorf("change actor column: %v", err)
	}
	ops, err := rows(&r, opCols, specAction)
	if err != nil {
		return Shape{}, fmt.Errorf("action column: %v", err)
	}
	return Shape{Changes: changes, Ops: ops}, nil
}

// changeShape reads an uncompressed change chunk's body (laid out as
// change.go describes): one change.
func changeShape(body []byte) (Shape, error) {
	r := reader{b: body}
	if err := r.hashes("dependencies"); err != nil {
		return Shape{}, err
	}
	_, ok1 := r.bytes() // actor
	_, ok2 := r.uleb()  // seq
	_, ok3 := r.uleb()  // startOp
	_, ok4 := r.sleb()  // time
	_, ok5 := r.bytes() // message
	if !ok1 || !ok2 || !ok3 || !ok4 || !ok5 || !skipList(&r) {
		return Shape{}, errors.New("header")
	}
	cols, ok := columnSpecs(&r)
	if !ok {
		return Shape{}, errors.New("column list")
	}
	ops, err := rows(&r, cols, specAction)
	if err != nil {
		return Shape{}, fmt.Errorf("action column: %v", err)
	}
	return Shape{Changes: 1, Ops: ops}, nil
}

// skipList steps r over a uLEB count of length-prefixed byte strings (a
// chunk's actors).
func skipList(r *reader) bool {
	n, ok := r.uleb()
	if !ok || n > uint64(len(r.b)-r.off) {
		return false
	}
	for range n {
		if _, ok := r.bytes(); !ok {
			return false
		}
	}
	return true
}

// rows steps r over the data of cols and counts the rows of the column
// whose spec is want (none if the chunk omits it).
func rows(r *reader, cols []colSpec, want uint64) (int64, error) {
	data, ok := columnData(r, cols, want)
	if !ok {
		return 0, errors.New("column data")
	}
	return countRows(data)
}

// colSpec is one column's entry in a chunk's column list.
type colSpec struct{ spec, len uint64 }

// columnSpecs reads a uLEB-counted list of (spec, length) pairs.
func columnSpecs(r *reader) ([]colSpec, bool) {
	n, ok := r.uleb()
	if !ok || n > 256 {
		return nil, false
	}
	out := make([]colSpec, n)
	for i := range out {
		spec, ok1 := r.uleb()
		l, ok2 := r.uleb()
		if !ok1 || !ok2 || l > uint64(len(r.b)) {
			return nil, false
		}
		out[i] = colSpec{spec, l}
	}
	return out, true
}

// columnData steps r over the data of cols, in order, and returns the
// (inflated) bytes of the one whose spec, deflate bit aside, is want: nil
// if the chunk omits it, which Automerge does for an empty column.
func columnData(r *reader, cols []colSpec, want uint64) ([]byte, bool) {
	var found []byte
	for _, c := range cols {
		if c.len > uint64(len(r.b)-r.off) {
			return nil, false
		}
		data := r.b[r.off : r.off+int(c.len)]
		r.off += int(c.len)
		if c.spec&^specDeflate != want {
			continue
		}
		if c.spec&specDeflate == 0 {
			found = data
			continue
		}
		inflated, err := inflate(data)
		if err != nil {
			return nil, false
		}
		found = inflated
	}
	return found, true
}

// inflate undoes raw DEFLATE, up to maxShapeInflated bytes.
func inflate(b []byte) ([]byte, error) {
	out, err := io.ReadAll(io.LimitReader(flate.NewReader(bytes.NewReader(b)), maxShapeInflated+1))
	if err != nil {
		return nil, err
	}
	if len(out) > maxShapeInflated {
		return nil, errors.New("inflates past the bound")
	}
	return out, nil
}

// countRows counts the rows of a run-length encoded column of LEB128
// values (actor, uLEB or delta): a signed run length c, then one value
// for c > 0, -c values for c < 0, and for c = 0 an unsigned count of nulls.
// Each value is skipped, not decoded.
func countRows(b []byte) (int64, error) {
	r := reader{b: b}
	var rows int64
	for r.off < len(b) {
		c, ok := r.sleb()
		if !ok {
			return 0, errors.New("run length")
		}
		var values, n uint64
		switch {
		case c > 0:
			n, values = uint64(c), 1
		case c < 0:
			n = -uint64(c)
			values = n
		default:
			if n, ok = r.uleb(); !ok {
				return 0, errors.New("null run")
			}
		}
		// Each value takes a byte at least: a run claiming more values than
		// bytes are left is damaged, and skipping it would only spin.
		if values > uint64(len(b)-r.off) || n > maxOps*4 {
			return 0, errors.New("run too long")
		}
		for range values {
			if !skipLEB(&r) {
				return 0, errors.New("value truncated")
			}
		}
		rows += int64(n)
	}
	return rows, nil
}

// skipLEB steps over one LEB128 value, signed or not: its bytes end at the
// first without the continuation bit.
func skipLEB(r *reader) bool {
	for i := r.off; i < len(r.b) && i-r.off < 10; i++ {
		if r.b[i]&0x80 == 0 {
			r.off = i + 1
			return true
		}
	}
	return false
}
