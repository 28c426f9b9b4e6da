package crdt

import (
	"bytes"
	"compress/flate"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"unicode/utf8"
)

// This file decodes one Automerge change chunk into its operations, in Go,
// without Automerge: the relay reads what a change does before it stores
// it, at a cost in proportion to the change, not the document.
//
// A change chunk is magic (4 bytes), checksum (4: the first bytes of the
// SHA-256 below), type (1: 1 change, 2 a change compressed whole with raw
// DEFLATE), length (uLEB), then the body:
//
//	deps        uLEB count, then 32-byte change hashes
//	actor       uLEB length, bytes
//	seq         uLEB
//	startOp     uLEB, not 0
//	time        sLEB, milliseconds since the Unix epoch
//	message     uLEB length, UTF-8 (empty: none)
//	actors      uLEB count, then each as uLEB length and bytes
//	columns     uLEB count, then (spec uLEB, length uLEB) pairs
//	column data the columns' bytes in order, then any extra bytes
//
// A column spec is id<<4 | deflate<<3 | type. The change's hash is the
// SHA-256 of type, length and body of the uncompressed form. Operation n
// has ID (startOp+n, actor); actor index 0 in the columns is the change's
// own actor, index i the i-th of actors.
//
// Columns are run-length encoded: a signed count c, then for c > 0 one
// value repeated c times, for c < 0 that many literal values, for c = 0
// (a run of nulls) an unsigned count of nulls. A delta column holds the
// differences between successive values; a boolean column alternating
// run lengths, starting with false. A column that ends early reads as
// nulls (Automerge omits a column that would hold only nulls).

// OpID names an operation: its counter and the actor (hex) that made it.
// An object is named by the OpID of the operation that made it; the root
// map is the zero OpID.
type OpID struct {
	Counter uint64
	Actor   string
}

// Root is the ObjID of the document's root map.
var Root = OpID{}

func (o OpID) String() string {
	if o == Root {
		return "_root"
	}
	return fmt.Sprintf("%d@%s", o.Counter, o.Actor)
}

// Action is what an operation does.
type Action uint8

// Actions as Automerge numbers them.
const (
	ActMakeMap   Action = 0
	ActPut       Action = 1
	ActMakeList  Action = 2
	ActDelete    Action = 3
	ActMakeText  Action = 4
	ActIncrement Action = 5
	ActMakeTable Action = 6
	ActMark      Action = 7
)

// ValueKind is the type of an operation's scalar value.
type ValueKind uint8

// Value kinds as Automerge numbers them in value metadata.
const (
	ValNull      ValueKind = 0
	ValFalse     ValueKind = 1
	ValTrue      ValueKind = 2
	ValUint      ValueKind = 3
	ValInt       ValueKind = 4
	ValFloat     ValueKind = 5
	ValString    ValueKind = 6
	ValBytes     ValueKind = 7
	ValCounter   ValueKind = 8
	ValTimestamp ValueKind = 9
	ValUnknown   ValueKind = 15 // type codes 10 to 15: from versions to come
)

// Value is an operation's scalar value. Str holds a string's text; Bytes
// the raw bytes of bytes and unknown values; Int ints, counters and
// timestamps; Uint uints; Float floats.
type Value struct {
	Kind  ValueKind
	Str   string
	Bytes []byte
	Int   int64
	Uint  uint64
	Float float64
}

// Op is one decoded operation.
type Op struct {
	ID     OpID
	Obj    OpID   // the object it acts on; Root for the root map
	Key    string // a map key, or "" for a list position
	Elem   OpID   // a list position (the element inserted by that op; zero: the head)
	InList bool   // the op addresses a list position, not a map key
	Insert bool
	Action Action
	Value  Value
	Pred   []OpID // the operations this one overwrites or deletes
	// Expand and MarkName belong to text marks (Automerge 0.5).
	Expand   bool
	MarkName string
}

// DecodedChange is one change as decoded from its bytes.
type DecodedChange struct {
	Hash    Hash
	Deps    []Hash
	Actor   string // hex
	Seq     uint64
	StartOp uint64
	Time    int64 // milliseconds since the Unix epoch
	Message string
	Ops     []Op
	// UnknownColumns: the change carries columns this decoder does not
	// know (from a later Automerge); their content is not in Ops.
	UnknownColumns bool
	Extra          []byte

	body []byte // the uncompressed body as received, for Canonical
}

// Size is the change's encoded size, uncompressed.
func (c *DecodedChange) Size() int { return len(c.body) }

// IsCanonical reports whether the change is encoded exactly as Automerge
// would rebuild it from a saved document (see Canonical).
func (c *DecodedChange) IsCanonical() bool {
	return !c.UnknownColumns && bytes.Equal(c.Canonical(), c.body)
}

// MaxOp is the counter of the change's last operation (StartOp-1 when it
// has none).
func (c *DecodedChange) MaxOp() uint64 { return c.StartOp + uint64(len(c.Ops)) - 1 }

// ErrBadChange is wrapped by DecodeChange's errors.
var ErrBadChange = errors.New("malformed change")

// maxInflated bounds what a compressed change may expand to: far above any
// change Haven writes, low enough that a small hostile chunk cannot make
// the reader allocate without bound.
const maxInflated = 64 << 20

// Column IDs and types of a change's operation columns.
const (
	colObjActor  = 0<<4 | 1
	colObjCtr    = 0<<4 | 2
	colKeyActor  = 1<<4 | 1
	colKeyCtr    = 1<<4 | 3
	colKeyStr    = 1<<4 | 5
	colInsert    = 3<<4 | 4
	colAction    = 4<<4 | 2
	colValMeta   = 5<<4 | 6
	colValRaw    = 5<<4 | 7
	colPredGroup = 7<<4 | 0
	colPredActor = 7<<4 | 1
	colPredCtr   = 7<<4 | 3
	colExpand    = 9<<4 | 4
	colMarkName  = 10<<4 | 5
)

var knownColumns = map[uint64]bool{
	colObjActor: true, colObjCtr: true, colKeyActor: true, colKeyCtr: true, colKeyStr: true,
	colInsert: true, colAction: true, colValMeta: true, colValRaw: true, colPredGroup: true,
	colPredActor: true, colPredCtr: true, colExpand: true, colMarkName: true,
}

func badChange(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrBadChange, fmt.Sprintf(format, a...))
}

// DecodeChange decodes one change chunk (as Automerge's Change.Save or a
// sync message carries it). It checks the chunk's checksum and that every
// column decodes whole; it never calls Automerge and never panics.
func DecodeChange(b []byte) (*DecodedChange, error) {
	if len(b) < 10 || [4]byte(b[:4]) != changeMagic {
		return nil, badChange("not a change chunk")
	}
	r := reader{b: b, off: 8}
	typ, _ := r.byte()
	n, ok := r.uleb()
	if !ok || n != uint64(len(b)-r.off) {
		return nil, badChange("length does not match")
	}
	body := b[r.off:]
	switch typ {
	case 1:
	case 2:
		inflated, err := io.ReadAll(io.LimitReader(flate.NewReader(bytes.NewReader(body)), maxInflated+1))
		if err != nil || len(inflated) > maxInflated {
			return nil, badChange("compressed change does not inflate")
		}
		body = inflated
	default:
		return nil, badChange("chunk type %d", typ)
	}
	h := sha256.New()
	h.Write([]byte{1})
	h.Write(binary.AppendUvarint(nil, uint64(len(body))))
	h.Write(body)
	var c DecodedChange
	copy(c.Hash[:], h.Sum(nil))
	if [4]byte(c.Hash[:4]) != [4]byte(b[4:8]) {
		return nil, badChange("checksum does not match")
	}
	if err := c.decodeBody(body); err != nil {
		return nil, err
	}
	c.body = body
	return &c, nil
}

func (c *DecodedChange) decodeBody(body []byte) error {
	r := reader{b: body}
	deps, ok := r.hashList()
	if !ok {
		return badChange("dependencies")
	}
	c.Deps = deps
	actor, ok := r.bytes()
	if !ok || len(actor) == 0 {
		return badChange("actor")
	}
	c.Actor = hex.EncodeToString(actor)
	if c.Seq, ok = r.uleb(); !ok || c.Seq == 0 {
		return badChange("seq")
	}
	if c.StartOp, ok = r.uleb(); !ok || c.StartOp == 0 {
		return badChange("start op")
	}
	if c.Time, ok = r.sleb(); !ok {
		return badChange("time")
	}
	msg, ok := r.bytes()
	if !ok || !utf8.Valid(msg) {
		return badChange("message")
	}
	c.Message = string(msg)
	nActors, ok := r.uleb()
	if !ok || nActors > uint64(len(body)) {
		return badChange("actors")
	}
	actors := []string{c.Actor}
	for i := uint64(0); i < nActors; i++ {
		a, ok := r.bytes()
		if !ok || len(a) == 0 {
			return badChange("actor %d", i+1)
		}
		actors = append(actors, hex.EncodeToString(a))
	}
	nCols, ok := r.uleb()
	if !ok || nCols > 64 {
		return badChange("column count")
	}
	type colRange struct {
		spec uint64
		len  uint64
	}
	specs := make([]colRange, nCols)
	var total uint64
	for i := range specs {
		spec, ok1 := r.uleb()
		l, ok2 := r.uleb()
		if !ok1 || !ok2 || l > uint64(len(body)) {
			return badChange("column %d", i)
		}
		if i > 0 && spec <= specs[i-1].spec {
			return badChange("columns out of order")
		}
		if spec&0x08 != 0 {
			return badChange("compressed column in a change")
		}
		specs[i] = colRange{spec, l}
		total += l
	}
	if total > uint64(len(body)-r.off) {
		return badChange("column data truncated")
	}
	cols := map[uint64][]byte{}
	for _, s := range specs {
		data := body[r.off : r.off+int(s.len)]
		r.off += int(s.len)
		if knownColumns[s.spec] {
			cols[s.spec] = data
		} else if len(data) > 0 {
			c.UnknownColumns = true
		}
	}
	c.Extra = body[r.off:]
	return c.decodeOps(cols, actors)
}

// decodeOps reads the operation columns.
func (c *DecodedChange) decodeOps(cols map[uint64][]byte, actors []string) error {
	action := rleUints(cols[colAction])
	var actions []uint64
	for {
		v, null, ok, err := action.next()
		if err != nil {
			return badChange("action column: %v", err)
		}
		if !ok {
			break
		}
		if null || v > uint64(ActMark) {
			return badChange("action %d", v)
		}
		actions = append(actions, v)
		if len(actions) > maxOps {
			return badChange("too many operations")
		}
	}
	if uint64(len(actions)) > math.MaxUint64-c.StartOp {
		return badChange("operation counters overflow")
	}
	objActor, objCtr := rleUints(cols[colObjActor]), rleUints(cols[colObjCtr])
	keyActor, keyCtr, keyStr := rleUints(cols[colKeyActor]), deltas(cols[colKeyCtr]), rleStrings(cols[colKeyStr])
	insert, expand := booleans(cols[colInsert]), booleans(cols[colExpand])
	valMeta, valRaw := rleUints(cols[colValMeta]), reader{b: cols[colValRaw]}
	predGroup, predActor, predCtr := rleUints(cols[colPredGroup]), rleUints(cols[colPredActor]), deltas(cols[colPredCtr])
	markName := rleStrings(cols[colMarkName])

	actorOf := func(idx uint64) (string, error) {
		if idx >= uint64(len(actors)) {
			return "", fmt.Errorf("actor index %d of %d", idx, len(actors))
		}
		return actors[idx], nil
	}
	c.Ops = make([]Op, len(actions))
	for i, act := range actions {
		op := &c.Ops[i]
		op.ID = OpID{Counter: c.StartOp + uint64(i), Actor: c.Actor}
		op.Action = Action(act)
		// Object: both columns null for the root.
		oa, oaNull, _, err1 := objActor.next()
		oc, ocNull, _, err2 := objCtr.next()
		if err := errors.Join(err1, err2); err != nil {
			return badChange("object columns: %v", err)
		}
		switch {
		case oaNull && ocNull:
			op.Obj = Root
		case oaNull != ocNull || oc == 0:
			return badChange("op %d: object half named", i)
		default:
			a, err := actorOf(oa)
			if err != nil {
				return badChange("op %d object: %v", i, err)
			}
			op.Obj = OpID{Counter: oc, Actor: a}
		}
		// Key: a string for a map key, else a list element (ctr 0: head).
		ka, kaNull, _, err1 := keyActor.next()
		kc, kcNull, _, err2 := keyCtr.next()
		ks, ksNull, _, err3 := keyStr.nextString()
		if err := errors.Join(err1, err2, err3); err != nil {
			return badChange("key columns: %v", err)
		}
		switch {
		case !ksNull:
			if !kaNull || !kcNull {
				return badChange("op %d: key is both a string and an element", i)
			}
			op.Key = ks
		case kcNull:
			return badChange("op %d: no key", i)
		case kc < 0:
			return badChange("op %d: negative element counter", i)
		case kc == 0:
			if !kaNull {
				return badChange("op %d: head element with an actor", i)
			}
			op.InList = true
		default:
			if kaNull {
				return badChange("op %d: element without an actor", i)
			}
			a, err := actorOf(ka)
			if err != nil {
				return badChange("op %d key: %v", i, err)
			}
			op.InList, op.Elem = true, OpID{Counter: uint64(kc), Actor: a}
		}
		var err error
		if op.Insert, err = insert.next(); err != nil {
			return badChange("insert column: %v", err)
		}
		if op.Expand, err = expand.next(); err != nil {
			return badChange("expand column: %v", err)
		}
		meta, metaNull, _, err := valMeta.next()
		if err != nil {
			return badChange("value metadata: %v", err)
		}
		if metaNull {
			meta = 0
		}
		if op.Value, err = readValue(&valRaw, meta); err != nil {
			return badChange("op %d value: %v", i, err)
		}
		groups, gNull, _, err := predGroup.next()
		if err != nil {
			return badChange("pred column: %v", err)
		}
		if gNull {
			groups = 0
		}
		if groups > uint64(len(actions))+maxOps {
			return badChange("op %d: %d preds", i, groups)
		}
		for g := uint64(0); g < groups; g++ {
			pa, paNull, ok1, err1 := predActor.next()
			pc, pcNull, ok2, err2 := predCtr.next()
			if err := errors.Join(err1, err2); err != nil {
				return badChange("pred columns: %v", err)
			}
			if !ok1 || !ok2 || paNull || pcNull || pc <= 0 {
				return badChange("op %d: pred %d missing", i, g)
			}
			a, err := actorOf(pa)
			if err != nil {
				return badChange("op %d pred: %v", i, err)
			}
			op.Pred = append(op.Pred, OpID{Counter: uint64(pc), Actor: a})
		}
		mn, mnNull, _, err := markName.nextString()
		if err != nil {
			return badChange("mark name column: %v", err)
		}
		if !mnNull {
			op.MarkName = mn
		}
	}
	if valRaw.off != len(valRaw.b) {
		return badChange("%d value bytes left over", len(valRaw.b)-valRaw.off)
	}
	for _, col := range []interface{ rest() bool }{&objActor, &objCtr, &keyActor, &keyCtr, &keyStr, &insert, &expand, &valMeta, &predGroup, &predActor, &predCtr, &markName} {
		if col.rest() {
			return badChange("a column holds more values than there are operations")
		}
	}
	return nil
}

// maxOps bounds the operations of one change (Automerge writes a 1 MB
// text insert as about a million).
const maxOps = 1 << 24

func readValue(raw *reader, meta uint64) (Value, error) {
	kind, n := ValueKind(meta&0x0f), meta>>4
	if n > uint64(len(raw.b)-raw.off) {
		return Value{}, fmt.Errorf("value of %d bytes, %d left", n, len(raw.b)-raw.off)
	}
	data := raw.b[raw.off : raw.off+int(n)]
	raw.off += int(n)
	v := Value{Kind: kind}
	sub := reader{b: data}
	whole := func(ok bool) error {
		if !ok || sub.off != len(data) {
			return errors.New("value bytes do not match their type")
		}
		return nil
	}
	switch {
	case kind == ValNull || kind == ValFalse || kind == ValTrue:
		if n != 0 {
			return v, errors.New("null or boolean with bytes")
		}
	case kind == ValUint:
		var ok bool
		v.Uint, ok = sub.uleb()
		return v, whole(ok)
	case kind == ValInt || kind == ValCounter || kind == ValTimestamp:
		var ok bool
		v.Int, ok = sub.sleb()
		return v, whole(ok)
	case kind == ValFloat:
		if n != 8 {
			return v, errors.New("float not 8 bytes")
		}
		v.Float = math.Float64frombits(binary.LittleEndian.Uint64(data))
	case kind == ValString:
		if !utf8.Valid(data) {
			return v, errors.New("string not UTF-8")
		}
		v.Str = string(data)
	default: // bytes, and unknown types from later versions
		if kind > ValTimestamp {
			v.Kind = ValUnknown
		}
		v.Bytes = data
	}
	return v, nil
}

// sleb reads a signed LEB128 (two's complement, not Go's zig-zag varint).
func (r *reader) sleb() (int64, bool) {
	var x int64
	var shift uint
	for i := r.off; i < len(r.b) && i-r.off < 10; i++ {
		c := r.b[i]
		x |= int64(c&0x7f) << shift
		shift += 7
		if c&0x80 == 0 {
			if shift < 64 && c&0x40 != 0 {
				x |= -1 << shift
			}
			r.off = i + 1
			return x, true
		}
	}
	return 0, false
}

// column is a run-length decoder over one column's bytes.
type column struct {
	r       reader
	count   uint64 // values left in the current run
	literal bool
	null    bool
	kind    int // 0 uLEB, 1 string, 2 sLEB
	// The value of the current run (a repeated run's, or a literal run's
	// latest), by kind.
	lastU uint64
	lastS string
	lastI int64
}

func rleUints(b []byte) column   { return column{r: reader{b: b}, kind: 0} }
func rleStrings(b []byte) column { return column{r: reader{b: b}, kind: 1} }

// rest reports whether values remain after the last operation.
func (c *column) rest() bool { return c.count > 0 || c.r.off < len(c.r.b) }

// head reads the next run header. It reports false at the end of the column.
func (c *column) head() (bool, error) {
	for c.count == 0 {
		if c.r.off >= len(c.r.b) {
			return false, nil
		}
		n, ok := c.r.sleb()
		if !ok {
			return false, errors.New("run length")
		}
		switch {
		case n > 0:
			c.count, c.literal, c.null = uint64(n), false, false
			if err := c.value(); err != nil {
				return false, err
			}
		case n < 0:
			if n == math.MinInt64 {
				return false, errors.New("run length")
			}
			c.count, c.literal, c.null = uint64(-n), true, false
		default:
			nulls, ok := c.r.uleb()
			if !ok || nulls == 0 {
				return false, errors.New("null run")
			}
			c.count, c.literal, c.null = nulls, false, true
		}
		if c.count > maxOps*4 {
			return false, errors.New("run too long")
		}
	}
	return true, nil
}

// value reads one value into last*.
func (c *column) value() error {
	var ok bool
	switch c.kind {
	case 0:
		c.lastU, ok = c.r.uleb()
	case 1:
		var b []byte
		b, ok = c.r.bytes()
		if ok && !utf8.Valid(b) {
			return errors.New("string not UTF-8")
		}
		c.lastS = string(b)
	case 2:
		c.lastI, ok = c.r.sleb()
	}
	if !ok {
		return errors.New("value truncated")
	}
	return nil
}

// nextRaw advances to the next value; ok is false at the end of the
// column (which reads as null).
func (c *column) nextRaw() (null, ok bool, err error) {
	more, err := c.head()
	if err != nil || !more {
		return true, false, err
	}
	c.count--
	if c.null {
		return true, true, nil
	}
	if c.literal {
		if err := c.value(); err != nil {
			return false, false, err
		}
	}
	return false, true, nil
}

// next returns the next value of a uLEB column: value, null, ok, error.
func (c *column) next() (uint64, bool, bool, error) {
	null, ok, err := c.nextRaw()
	return c.lastU, null, ok, err
}

// deltaColumn reads a delta-encoded column as absolute values.
type deltaColumn struct {
	column
	sum int64
}

func deltas(b []byte) deltaColumn { return deltaColumn{column: column{r: reader{b: b}, kind: 2}} }

func (d *deltaColumn) next() (int64, bool, bool, error) {
	null, ok, err := d.nextRaw()
	if err != nil || null {
		return 0, true, ok, err
	}
	d.sum += d.lastI
	return d.sum, false, true, nil
}

// nextString returns the next value of a string column.
func (c *column) nextString() (string, bool, bool, error) {
	null, ok, err := c.nextRaw()
	return c.lastS, null, ok, err
}

// boolColumn reads alternating run lengths, starting with false.
type boolColumn struct {
	r     reader
	value bool
	count uint64
	begun bool
}

func booleans(b []byte) boolColumn { return boolColumn{r: reader{b: b}} }

func (c *boolColumn) rest() bool { return c.count > 0 || c.r.off < len(c.r.b) }

func (c *boolColumn) next() (bool, error) {
	for c.count == 0 {
		if c.r.off >= len(c.r.b) {
			return false, nil // a column that ends early reads as false
		}
		n, ok := c.r.uleb()
		if !ok || n > maxOps*4 {
			return false, errors.New("run length")
		}
		if c.begun {
			c.value = !c.value
		}
		c.begun = true
		c.count = n
	}
	c.count--
	return c.value, nil
}
