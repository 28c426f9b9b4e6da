package wire

import (
	"fmt"
	"math"

	"github.com/fxamacker/cbor/v2"
)

// maxSafeInteger is JavaScript's Number.MAX_SAFE_INTEGER: the largest count or
// timestamp that survives the trip through a JS number unchanged.
const maxSafeInteger = 1<<53 - 1

// decMode decodes frames. Duplicate keys are rejected (cbor-x would keep the
// last; no JS encoder writes them, and refusing avoids two readers disagreeing).
// Keys are matched case-sensitively, as JS property names are. Container sizes
// are capped far above anything automerge-repo sends, to bound allocation;
// arrays allow a haven-list of a large scope (every document of a hub's
// homes) in one frame, which MaxFrameSize bounds anyway.
var decMode = mustDecMode(cbor.DecOptions{
	DupMapKey:         cbor.DupMapKeyEnforcedAPF,
	FieldNameMatching: cbor.FieldNameMatchingCaseSensitive,
	MaxArrayElements:  1 << 17,
	MaxMapPairs:       1024,
	IndefLength:       cbor.IndefLengthAllowed,
	TagsMd:            cbor.TagsAllowed,
})

// encMode encodes frames: shortest integers, float64 for other numbers (as
// cbor-x does), byte strings for []byte, definite lengths, sorted keys so
// the same message always encodes to the same bytes.
var encMode = mustEncMode(cbor.EncOptions{
	Sort:          cbor.SortBytewiseLexical,
	ShortestFloat: cbor.ShortestFloatNone,
	NilContainers: cbor.NilContainerAsEmpty,
	IndefLength:   cbor.IndefLengthForbidden,
})

func mustDecMode(o cbor.DecOptions) cbor.DecMode {
	dm, err := o.DecMode()
	if err != nil {
		panic(err)
	}
	return dm
}

func mustEncMode(o cbor.EncOptions) cbor.EncMode {
	em, err := o.EncMode()
	if err != nil {
		panic(err)
	}
	return em
}

// Encode returns the frame for m: a CBOR map with text keys, holding only the
// keys of m's type (doc.go) and only those that are set. It does not call
// Validate. Numbers whose CBOR form would need 8 bytes are written as float64,
// because cbor-x decodes 8-byte integers as BigInt, which automerge-repo
// cannot compare or do arithmetic with.
func Encode(m Message) ([]byte, error) {
	fields, ok := schemas[m.Type]
	if !ok {
		fields = unknownSchema
	}
	f := outFrame{Type: string(m.Type)}
	if fields&fSender != 0 {
		f.SenderID = m.SenderID
	}
	if fields&fTarget != 0 {
		f.TargetID = m.TargetID
	}
	if fields&fDocument != 0 {
		f.DocumentID = m.DocumentID
	}
	if fields&fData != 0 {
		f.Data = m.Data
	}
	if fields&fPeerMetadata != 0 && m.PeerMetadata != nil {
		f.PeerMetadata = &outMetadata{StorageID: m.PeerMetadata.StorageID, IsEphemeral: m.PeerMetadata.IsEphemeral}
	}
	if fields&fSupported != 0 {
		f.Supported = m.SupportedProtocolVersions
	}
	if fields&fSelected != 0 {
		f.Selected = m.SelectedProtocolVersion
	}
	if fields&fErrorMessage != 0 {
		f.ErrorMessage = m.ErrorMessage
	}
	if fields&fErrorCode != 0 {
		f.ErrorCode = m.ErrorCode
	}
	if fields&fCount != 0 && m.Count != 0 {
		if m.Count > maxSafeInteger {
			return nil, fmt.Errorf("wire: encode %s: count %d is beyond 2^53", m.Type, m.Count)
		}
		n := jsNumber(m.Count)
		f.Count = &n
	}
	if fields&fSession != 0 {
		f.SessionID = m.SessionID
	}
	if fields&fNewHeads != 0 && len(m.NewHeads) > 0 {
		f.NewHeads = make(map[string]outHeads, len(m.NewHeads))
		for id, h := range m.NewHeads {
			if h.Timestamp > maxSafeInteger || h.Timestamp < -maxSafeInteger {
				return nil, fmt.Errorf("wire: encode %s: timestamp %d is beyond 2^53", m.Type, h.Timestamp)
			}
			f.NewHeads[id] = outHeads{Heads: h.Heads, Timestamp: jsNumber(h.Timestamp)}
		}
	}
	if fields&fAdd != 0 {
		f.Add = m.Add
	}
	if fields&fRemove != 0 {
		f.Remove = m.Remove
	}
	if fields&fDocumentIDs != 0 {
		f.DocumentIDs = m.DocumentIDs
	}
	if fields&fSnapshot != 0 {
		f.Snapshot = m.Snapshot
	}
	if fields&fChunks != 0 {
		f.Chunks = m.Chunks
	}
	b, err := encMode.Marshal(f)
	if err != nil {
		return nil, fmt.Errorf("wire: encode %s: %w", m.Type, err)
	}
	if len(b) > MaxFrameSize {
		return nil, fmt.Errorf("%w: %s message encodes to %d bytes, limit %d", ErrTooLarge, m.Type, len(b), MaxFrameSize)
	}
	return b, nil
}

// outFrame is the encoded shape of every message type; omitempty leaves out
// the keys a type does not carry.
type outFrame struct {
	Type         string              `cbor:"type"`
	SenderID     string              `cbor:"senderId,omitempty"`
	TargetID     string              `cbor:"targetId,omitempty"`
	DocumentID   string              `cbor:"documentId,omitempty"`
	Data         []byte              `cbor:"data,omitempty"`
	PeerMetadata *outMetadata        `cbor:"peerMetadata,omitempty"`
	Supported    []string            `cbor:"supportedProtocolVersions,omitempty"`
	Selected     string              `cbor:"selectedProtocolVersion,omitempty"`
	ErrorMessage string              `cbor:"message,omitempty"`
	ErrorCode    string              `cbor:"code,omitempty"`
	Count        *jsNumber           `cbor:"count,omitempty"`
	SessionID    string              `cbor:"sessionId,omitempty"`
	NewHeads     map[string]outHeads `cbor:"newHeads,omitempty"`
	Add          []string            `cbor:"add,omitempty"`
	Remove       []string            `cbor:"remove,omitempty"`
	DocumentIDs  []string            `cbor:"documentIds,omitempty"`
	Snapshot     []byte              `cbor:"snapshot,omitempty"`
	Chunks       [][]byte            `cbor:"chunks,omitempty"`
}

type outMetadata struct {
	StorageID   string `cbor:"storageId,omitempty"`
	IsEphemeral bool   `cbor:"isEphemeral"`
}

type outHeads struct {
	Heads     []string `cbor:"heads"` // [] rather than null when empty
	Timestamp jsNumber `cbor:"timestamp"`
}

// jsNumber is an integer encoded the way cbor-x encodes a JS number holding
// it: as a CBOR integer when its argument fits in 4 bytes, else as float64.
type jsNumber int64

func (n jsNumber) MarshalCBOR() ([]byte, error) {
	if v := int64(n); v >= -(1<<32) && v <= math.MaxUint32 {
		return encMode.Marshal(v)
	}
	return encMode.Marshal(float64(n))
}

// Decode parses one frame. It accepts what automerge-repo's cbor-x decoder
// accepts from a JS peer: integers or floats for numbers, null or undefined
// for an absent key, tag 64 around byte strings, indefinite lengths, and
// keys it does not know (ignored). A frame of an unknown type is not an
// error: it comes back with Type set and Type.Known() false.
//
// It rejects, wrapping ErrTooLarge or ErrMalformed: frames over MaxFrameSize,
// anything but a single CBOR map, a missing or non-text "type", a known key
// of the wrong CBOR type, duplicate keys and non-text, non-integer keys.
// Presence of required keys is Validate's job. The result does not alias frame.
func Decode(frame []byte) (Message, error) {
	if len(frame) > MaxFrameSize {
		return Message{}, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(frame), MaxFrameSize)
	}
	if len(frame) == 0 {
		return Message{}, fmt.Errorf("%w: empty frame", ErrMalformed)
	}
	if major(frame[0]) != majorMap {
		return Message{}, fmt.Errorf("%w: frame is %s, want map", ErrMalformed, kind(frame[0]))
	}
	var raw inFrame
	if err := decMode.Unmarshal(frame, &raw); err != nil {
		return Message{}, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if absent(raw.Type) {
		return Message{}, fmt.Errorf("%w: no type", ErrMalformed)
	}
	d := fieldDecoder{}
	m := Message{Type: Type(d.text(raw.Type, "type"))}
	if d.err != nil {
		return Message{}, d.err
	}

	fields, ok := schemas[m.Type]
	if !ok {
		// Unknown type: its schema is not ours to judge. Keep the peer IDs
		// if they look like peer IDs, for logging; never fail.
		d := fieldDecoder{}
		if s := d.text(raw.SenderID, "senderId"); d.err == nil {
			m.SenderID = s
		}
		d = fieldDecoder{}
		if s := d.text(raw.TargetID, "targetId"); d.err == nil {
			m.TargetID = s
		}
		return m, nil
	}

	if fields&fSender != 0 {
		m.SenderID = d.text(raw.SenderID, "senderId")
	}
	if fields&fTarget != 0 {
		m.TargetID = d.text(raw.TargetID, "targetId")
	}
	if fields&fDocument != 0 {
		m.DocumentID = d.text(raw.DocumentID, "documentId")
	}
	if fields&fData != 0 {
		m.Data = d.bytes(raw.Data, "data")
	}
	if fields&fPeerMetadata != 0 {
		m.PeerMetadata = d.peerMetadata(raw.PeerMetadata)
	}
	if fields&fSupported != 0 {
		m.SupportedProtocolVersions = d.texts(raw.Supported, "supportedProtocolVersions")
	}
	if fields&fSelected != 0 {
		m.SelectedProtocolVersion = d.text(raw.Selected, "selectedProtocolVersion")
	}
	if fields&fErrorMessage != 0 {
		m.ErrorMessage = d.text(raw.ErrorMessage, "message")
	}
	if fields&fErrorCode != 0 {
		m.ErrorCode = d.text(raw.ErrorCode, "code")
	}
	if fields&fCount != 0 {
		if n := d.integer(raw.Count, "count"); n < 0 {
			d.fail("count", "a non-negative integer", fmt.Sprint(n))
		} else {
			m.Count = uint64(n)
		}
	}
	if fields&fSession != 0 {
		m.SessionID = d.text(raw.SessionID, "sessionId")
	}
	if fields&fNewHeads != 0 {
		m.NewHeads = d.newHeads(raw.NewHeads)
	}
	if fields&fAdd != 0 {
		m.Add = d.texts(raw.Add, "add")
	}
	if fields&fRemove != 0 {
		m.Remove = d.texts(raw.Remove, "remove")
	}
	if fields&fDocumentIDs != 0 {
		m.DocumentIDs = d.texts(raw.DocumentIDs, "documentIds")
	}
	if fields&fSnapshot != 0 {
		m.Snapshot = d.bytes(raw.Snapshot, "snapshot")
	}
	if fields&fChunks != 0 {
		m.Chunks = d.byteList(raw.Chunks, "chunks")
	}
	if d.err != nil {
		return Message{}, d.err
	}
	return m, nil
}

// inFrame collects the known keys of a frame as undecoded CBOR items; other
// keys are skipped without being decoded.
type inFrame struct {
	Type         item `cbor:"type"`
	SenderID     item `cbor:"senderId"`
	TargetID     item `cbor:"targetId"`
	DocumentID   item `cbor:"documentId"`
	Data         item `cbor:"data"`
	PeerMetadata item `cbor:"peerMetadata"`
	Supported    item `cbor:"supportedProtocolVersions"`
	Selected     item `cbor:"selectedProtocolVersion"`
	ErrorMessage item `cbor:"message"`
	ErrorCode    item `cbor:"code"`
	Count        item `cbor:"count"`
	SessionID    item `cbor:"sessionId"`
	NewHeads     item `cbor:"newHeads"`
	Add          item `cbor:"add"`
	Remove       item `cbor:"remove"`
	DocumentIDs  item `cbor:"documentIds"`
	Snapshot     item `cbor:"snapshot"`
	Chunks       item `cbor:"chunks"`
}

// item is one undecoded, well-formed CBOR data item. It aliases the frame
// being decoded and must not outlive Decode.
type item []byte

func (it *item) UnmarshalCBOR(b []byte) error {
	*it = b
	return nil
}

// absent reports whether a key was missing, null or undefined: JS code reads
// all three as undefined.
func absent(it item) bool {
	return len(it) == 0 || it[0] == 0xf6 || it[0] == 0xf7
}

// fieldDecoder decodes items into Go values, keeping the first error.
type fieldDecoder struct {
	err error
}

func (d *fieldDecoder) fail(key, want, got string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s is %s, want %s", ErrMalformed, key, got, want)
	}
}

func (d *fieldDecoder) unmarshal(it item, key string, v any) bool {
	if err := decMode.Unmarshal(it, v); err != nil {
		if d.err == nil {
			d.err = fmt.Errorf("%w: %s: %w", ErrMalformed, key, err)
		}
		return false
	}
	return true
}

func (d *fieldDecoder) text(it item, key string) string {
	if absent(it) {
		return ""
	}
	if major(it[0]) != majorText {
		d.fail(key, "text string", kind(it[0]))
		return ""
	}
	var s string
	d.unmarshal(it, key, &s)
	return s
}

// bytes reads a byte string, optionally inside tag 64 (Uint8Array), which
// cbor-x writes when tagUint8Array is left on.
func (d *fieldDecoder) bytes(it item, key string) []byte {
	if absent(it) {
		return nil
	}
	inner := it
	if len(inner) >= 2 && inner[0] == 0xd8 && inner[1] == 64 {
		inner = inner[2:]
	}
	if len(inner) == 0 || major(inner[0]) != majorBytes {
		d.fail(key, "byte string", kind(it[0]))
		return nil
	}
	var b []byte
	if !d.unmarshal(it, key, &b) || len(b) == 0 {
		return nil
	}
	return b
}

func (d *fieldDecoder) texts(it item, key string) []string {
	if absent(it) {
		return nil
	}
	if major(it[0]) != majorArray {
		d.fail(key, "array of text strings", kind(it[0]))
		return nil
	}
	var ss []string
	if !d.unmarshal(it, key, &ss) || len(ss) == 0 {
		return nil
	}
	return ss
}

// byteList reads an array of byte strings (Haven's own types only).
func (d *fieldDecoder) byteList(it item, key string) [][]byte {
	if absent(it) {
		return nil
	}
	if major(it[0]) != majorArray {
		d.fail(key, "array of byte strings", kind(it[0]))
		return nil
	}
	var bs [][]byte
	if !d.unmarshal(it, key, &bs) || len(bs) == 0 {
		return nil
	}
	return bs
}

// integer reads a number that must hold an integer a JS number represents
// exactly. cbor-x writes integers of 2^32 and above (timestamps) as float64.
func (d *fieldDecoder) integer(it item, key string) int64 {
	if absent(it) {
		return 0
	}
	const want = "an integer within ±2^53"
	switch b := it[0]; {
	case major(b) == majorUint:
		var u uint64
		if d.unmarshal(it, key, &u) {
			if u > maxSafeInteger {
				d.fail(key, want, fmt.Sprint(u))
				return 0
			}
			return int64(u)
		}
	case major(b) == majorNegInt:
		var n int64
		if d.unmarshal(it, key, &n) {
			if n < -maxSafeInteger {
				d.fail(key, want, fmt.Sprint(n))
				return 0
			}
			return n
		}
	case b == 0xf9 || b == 0xfa || b == 0xfb:
		var f float64
		if d.unmarshal(it, key, &f) {
			if f != math.Trunc(f) || math.Abs(f) > maxSafeInteger {
				d.fail(key, want, fmt.Sprint(f))
				return 0
			}
			return int64(f)
		}
	default:
		d.fail(key, "number", kind(b))
	}
	return 0
}

func (d *fieldDecoder) boolean(it item, key string) bool {
	if absent(it) {
		return false
	}
	switch it[0] {
	case 0xf4:
		return false
	case 0xf5:
		return true
	}
	d.fail(key, "boolean", kind(it[0]))
	return false
}

func (d *fieldDecoder) peerMetadata(it item) *PeerMetadata {
	if absent(it) {
		return nil
	}
	if major(it[0]) != majorMap {
		d.fail("peerMetadata", "map", kind(it[0]))
		return nil
	}
	var raw struct {
		StorageID   item `cbor:"storageId"`
		IsEphemeral item `cbor:"isEphemeral"`
	}
	if !d.unmarshal(it, "peerMetadata", &raw) {
		return nil
	}
	return &PeerMetadata{
		StorageID:   d.text(raw.StorageID, "peerMetadata.storageId"),
		IsEphemeral: d.boolean(raw.IsEphemeral, "peerMetadata.isEphemeral"),
	}
}

func (d *fieldDecoder) newHeads(it item) map[string]RemoteHeads {
	if absent(it) {
		return nil
	}
	if major(it[0]) != majorMap {
		d.fail("newHeads", "map", kind(it[0]))
		return nil
	}
	var raw map[string]item
	if !d.unmarshal(it, "newHeads", &raw) || len(raw) == 0 {
		return nil
	}
	out := make(map[string]RemoteHeads, len(raw))
	for id, entry := range raw {
		key := "newHeads[" + id + "]"
		if absent(entry) || major(entry[0]) != majorMap {
			d.fail(key, "map", kindOrAbsent(entry))
			return nil
		}
		var e struct {
			Heads     item `cbor:"heads"`
			Timestamp item `cbor:"timestamp"`
		}
		if !d.unmarshal(entry, key, &e) {
			return nil
		}
		out[id] = RemoteHeads{
			Heads:     d.texts(e.Heads, key+".heads"),
			Timestamp: d.integer(e.Timestamp, key+".timestamp"),
		}
	}
	return out
}

// CBOR major types (RFC 8949 §3.1), from the top three bits of an item's first byte.
const (
	majorUint   = 0
	majorNegInt = 1
	majorBytes  = 2
	majorText   = 3
	majorArray  = 4
	majorMap    = 5
	majorTag    = 6
	majorSimple = 7
)

func major(b byte) int { return int(b >> 5) }

// kind names the CBOR type an item starts with, for error messages.
func kind(b byte) string {
	switch major(b) {
	case majorUint:
		return "unsigned integer"
	case majorNegInt:
		return "negative integer"
	case majorBytes:
		return "byte string"
	case majorText:
		return "text string"
	case majorArray:
		return "array"
	case majorMap:
		return "map"
	case majorTag:
		return "tag"
	}
	switch b {
	case 0xf4, 0xf5:
		return "boolean"
	case 0xf6:
		return "null"
	case 0xf7:
		return "undefined"
	case 0xf9, 0xfa, 0xfb:
		return "float"
	}
	return "simple value"
}

func kindOrAbsent(it item) string {
	if len(it) == 0 {
		return "absent"
	}
	return kind(it[0])
}
