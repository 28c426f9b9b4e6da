package wire

import (
	"bytes"
	"encoding/hex"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
)

// docID is a valid document ID: bs58check of 16 bytes of 0x07, as
// syncd/interop/fixtures.mjs builds it.
const docID = "6gMHXjsZ5cxdn4qSbgGYYY8CnKK"

// samples has one fully populated message of every known type, plus an
// unknown one, as Haven would send them.
func samples() []Message {
	meta := &PeerMetadata{StorageID: "3f1c1a52-8d3b-4c1e-9a55-0b6f0f6e2d11"}
	return []Message{
		{Type: TypeJoin, SenderID: "desktop-1", PeerMetadata: meta, SupportedProtocolVersions: []string{ProtocolV1}},
		{Type: TypeJoin, SenderID: "desktop-2", PeerMetadata: &PeerMetadata{IsEphemeral: true}, SupportedProtocolVersions: []string{ProtocolV1}},
		{Type: TypePeer, SenderID: "syncd", TargetID: "desktop-1", PeerMetadata: meta, SelectedProtocolVersion: ProtocolV1},
		{Type: TypeError, SenderID: "syncd", TargetID: "desktop-1", ErrorMessage: "device revoked: ask your administrator to enrol it again", ErrorCode: "device-revoked"},
		{Type: TypeLeave, SenderID: "desktop-1"},
		{Type: TypeHavenList, SenderID: "desktop-1", TargetID: "syncd"},
		{Type: TypeHavenList, SenderID: "syncd", TargetID: "desktop-1", DocumentIDs: []string{docID, docID}},
		{Type: TypeHavenFetch, SenderID: "desktop-1", TargetID: "syncd", DocumentIDs: []string{docID}},
		{Type: TypeHavenDoc, SenderID: "syncd", TargetID: "desktop-1", DocumentID: docID, Snapshot: []byte{0x85, 1}, Chunks: [][]byte{{1, 2}, {3}}},
		{Type: TypeHavenDoc, SenderID: "syncd", TargetID: "desktop-1", DocumentID: docID, Chunks: [][]byte{{1, 2}}},
		{Type: TypeHavenAudit, SenderID: "desktop-1", TargetID: "syncd", Data: []byte(`[{"action":"view"}]`), Count: 3},
		{Type: TypeHavenAuditAck, SenderID: "syncd", TargetID: "desktop-1", Count: 3},
		{Type: TypeHavenTrust, SenderID: "syncd", TargetID: "desktop-1", Data: []byte(`{"anchor":"AAAA"}`)},
		{Type: TypeHavenCertReq, SenderID: "desktop-1", TargetID: "syncd", Data: []byte(`{"id":"req-1"}`)},
		{Type: TypeHavenLeaver, SenderID: "desktop-1", TargetID: "syncd", Data: []byte(`{"cert":"c-1"}`)},
		{Type: TypeHavenWho, SenderID: "desktop-1", TargetID: "syncd", Data: []byte(`{"doc":"x","actors":["ab"]}`)},
		{Type: TypeHavenSearch, SenderID: "desktop-1", TargetID: "syncd", Data: []byte(`{"id":"q1","nhsNumber":"9990000018"}`)},
		{Type: TypeHavenOpen, SenderID: "desktop-1", TargetID: "syncd", Data: []byte(`{"id":"o1"}`)},
		{Type: TypeHavenReview, SenderID: "syncd", TargetID: "desktop-1", Data: []byte(`{"id":"r1","pending":[]}`)},
		{Type: TypeHavenGone, SenderID: "syncd", TargetID: "desktop-1", DocumentIDs: []string{"4NMNnkMhL8jXrdJ9jamS58PAVdXu"}, ErrorCode: CodeNotShared},
		{Type: TypeSync, SenderID: "desktop-1", TargetID: "syncd", DocumentID: docID, Data: []byte{0x42, 1, 2, 3}},
		{Type: TypeRequest, SenderID: "desktop-1", TargetID: "syncd", DocumentID: docID, Data: []byte{0x42, 0, 0}},
		{Type: TypeDocUnavailable, SenderID: "syncd", TargetID: "desktop-1", DocumentID: docID},
		{Type: TypeEphemeral, SenderID: "desktop-1", TargetID: "syncd", DocumentID: docID, Data: []byte{0xa0}, Count: 7, SessionID: "k2j3h4g5f6a"},
		{Type: TypeEphemeral, SenderID: "desktop-1", TargetID: "syncd", DocumentID: docID, Data: []byte{0xa0}, Count: 1<<32 + 5, SessionID: "k2j3h4g5f6a"},
		{Type: TypeRemoteHeadsChanged, SenderID: "syncd", TargetID: "desktop-1", DocumentID: docID, NewHeads: map[string]RemoteHeads{
			meta.StorageID: {Heads: []string{"2fsZVuhuqNSuhfn1mb5Sn1k8FUCpzVvR4tTNk3NtWoGdJGx2t6"}, Timestamp: 1763800000123},
			"other":        {Timestamp: 12},
		}},
		{Type: TypeRemoteSubscriptionChange, SenderID: "desktop-1", TargetID: "syncd", Add: []string{meta.StorageID}, Remove: []string{"b", "c"}},
		{Type: "haven-snapshot", SenderID: "syncd", TargetID: "desktop-1"},
	}
}

func TestRoundTrip(t *testing.T) {
	for _, want := range samples() {
		frame, err := Encode(want)
		if err != nil {
			t.Fatalf("Encode(%+v) = %v", want, err)
		}
		got, err := Decode(frame)
		if err != nil {
			t.Fatalf("Decode(%x) = %v", frame, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("Decode(Encode(m)) = %+v, want %+v", got, want)
		}
		if want.Type.Known() {
			if err := got.Validate(); err != nil {
				t.Errorf("Validate(%s) = %v", want.Type, err)
			}
		}
	}
}

func TestEncodeDeterministic(t *testing.T) {
	for _, m := range samples() {
		a, _ := Encode(m)
		b, _ := Encode(m)
		if !bytes.Equal(a, b) {
			t.Errorf("Encode(%s) differs between calls: %x vs %x", m.Type, a, b)
		}
	}
}

// TestEncodeShape pins the exact bytes of a few frames: text keys, no keys
// the type does not carry, none for unset fields, byte strings for data,
// small integers as CBOR integers and larger ones as float64.
func TestEncodeShape(t *testing.T) {
	tests := []struct {
		name string
		m    Message
		want string // CBOR diagnostic notation, keys in encoded order
	}{
		{"doc-unavailable ignores fields of other types",
			Message{Type: TypeDocUnavailable, SenderID: "s", TargetID: "t", DocumentID: "d", Data: []byte{1}, Count: 3, ErrorMessage: "x"},
			`{"type": "doc-unavailable", "senderId": "s", "targetId": "t", "documentId": "d"}`},
		{"sync data is a byte string",
			Message{Type: TypeSync, SenderID: "s", TargetID: "t", DocumentID: "d", Data: []byte{1, 2}},
			`{"data": h'0102', "type": "sync", "senderId": "s", "targetId": "t", "documentId": "d"}`},
		{"peer metadata without storage ID omits the key",
			Message{Type: TypeJoin, SenderID: "s", PeerMetadata: &PeerMetadata{IsEphemeral: true}, SupportedProtocolVersions: []string{"1"}},
			`{"type": "join", "senderId": "s", "peerMetadata": {"isEphemeral": true}, "supportedProtocolVersions": ["1"]}`},
		{"count below 2^32 is an integer",
			Message{Type: TypeEphemeral, Count: math.MaxUint32},
			`{"type": "ephemeral", "count": 4294967295}`},
		{"count of 2^32 is a float64",
			Message{Type: TypeEphemeral, Count: 1 << 32},
			`{"type": "ephemeral", "count": 4294967296.0}`},
		{"timestamps are float64, empty heads an empty array",
			Message{Type: TypeRemoteHeadsChanged, NewHeads: map[string]RemoteHeads{"s": {Timestamp: 1763800000123}}},
			`{"type": "remote-heads-changed", "newHeads": {"s": {"heads": [], "timestamp": 1763800000123.0}}}`},
		{"negative timestamps past -2^32 are float64 too",
			Message{Type: TypeRemoteHeadsChanged, NewHeads: map[string]RemoteHeads{"s": {Timestamp: -(1 << 32) - 1}}},
			`{"type": "remote-heads-changed", "newHeads": {"s": {"heads": [], "timestamp": -4294967297.0}}}`},
		{"unknown types keep only type and peer IDs",
			Message{Type: "x", SenderID: "s", TargetID: "t", DocumentID: "d"},
			`{"type": "x", "senderId": "s", "targetId": "t"}`},
	}
	for _, tt := range tests {
		frame, err := Encode(tt.m)
		if err != nil {
			t.Fatalf("%s: Encode = %v", tt.name, err)
		}
		got, err := diagnose(frame)
		if err != nil {
			t.Fatalf("%s: diagnose(%x) = %v", tt.name, frame, err)
		}
		if got != tt.want {
			t.Errorf("%s: Encode = %s, want %s", tt.name, got, tt.want)
		}
	}
}

func TestEncodeRejects(t *testing.T) {
	tests := []struct {
		name string
		m    Message
	}{
		{"count past 2^53", Message{Type: TypeEphemeral, Count: 1 << 53}},
		{"timestamp past 2^53", Message{Type: TypeRemoteHeadsChanged, NewHeads: map[string]RemoteHeads{"s": {Timestamp: 1 << 53}}}},
		{"frame too large", Message{Type: TypeSync, Data: make([]byte, MaxFrameSize)}},
	}
	for _, tt := range tests {
		if frame, err := Encode(tt.m); err == nil {
			t.Errorf("%s: Encode = %d bytes, want error", tt.name, len(frame))
		}
	}
}

// frameHex builds a frame from hex with spaces and comments stripped.
func frameHex(t *testing.T, s string) []byte {
	t.Helper()
	var clean strings.Builder
	for _, line := range strings.Split(s, "\n") {
		line, _, _ = strings.Cut(line, "#")
		clean.WriteString(strings.ReplaceAll(strings.TrimSpace(line), " ", ""))
	}
	b, err := hex.DecodeString(clean.String())
	if err != nil {
		t.Fatalf("bad test hex %q: %v", s, err)
	}
	return b
}

// CBOR text strings used to build frames by hand.
const (
	hType      = "64 74797065"                                              // "type"
	hSync      = "64 73796e63"                                              // "sync"
	hEphemeral = "69 657068656d6572616c"                                    // "ephemeral"
	hJoin      = "64 6a6f696e"                                              // "join"
	hSenderID  = "68 73656e6465724964"                                      // "senderId"
	hCount     = "65 636f756e74"                                            // "count"
	hData      = "64 64617461"                                              // "data"
	hMeta      = "6c 706565724d65746164617461"                              // "peerMetadata"
	hStorageID = "69 73746f726167654964"                                    // "storageId"
	hIsEphem   = "6b 6973457068656d6572616c"                                // "isEphemeral"
	hNewHeads  = "68 6e65774865616473"                                      // "newHeads"
	hRHC       = "74 72656d6f74652d68656164732d6368616e676564"              // "remote-heads-changed"
	hTimestamp = "69 74696d657374616d70"                                    // "timestamp"
	hSupported = "78 19 737570706f7274656450726f746f636f6c56657273696f6e73" // "supportedProtocolVersions"
	hS         = "61 73"                                                    // "s"
)

// TestDecodeTolerant checks the inputs JS peers may produce that a strict
// decoder would refuse.
func TestDecodeTolerant(t *testing.T) {
	tests := []struct {
		name  string
		frame string
		want  Message
	}{
		{"count as float64", "a2" + hType + hEphemeral + hCount + "fb 401c000000000000",
			Message{Type: TypeEphemeral, Count: 7}},
		{"count as float16", "a2" + hType + hEphemeral + hCount + "f9 4700",
			Message{Type: TypeEphemeral, Count: 7}},
		{"count in an 8-byte integer", "a2" + hType + hEphemeral + hCount + "1b 0000000000000007",
			Message{Type: TypeEphemeral, Count: 7}},
		{"null and undefined are absent", "a3" + hType + hSync + hSenderID + "f6" + hData + "f7",
			Message{Type: TypeSync}},
		{"undefined storageId", "a2" + hType + hJoin + hMeta + "a2" + hStorageID + "f7" + hIsEphem + "f5",
			Message{Type: TypeJoin, PeerMetadata: &PeerMetadata{IsEphemeral: true}}},
		{"cbor-x's 2-byte map headers", "b90002" + hType + hJoin + hSenderID + "61 61",
			Message{Type: TypeJoin, SenderID: "a"}},
		{"indefinite-length map", "bf" + hType + hJoin + hSenderID + "61 61 ff",
			Message{Type: TypeJoin, SenderID: "a"}},
		{"tag 64 around data", "a2" + hType + hSync + hData + "d840 42 0102",
			Message{Type: TypeSync, Data: []byte{1, 2}}},
		{"unknown text and integer keys", "a4" + hType + hJoin + "63 666f6f 81 01" + "01 02" + hSenderID + "61 61",
			Message{Type: TypeJoin, SenderID: "a"}},
		{"keys are case-sensitive", "a2" + hType + hJoin + "68 73656e6465724944 01", // "senderID": 1
			Message{Type: TypeJoin}},
		{"fields of other types are not read", "a2" + hType + hJoin + hCount + "63 616263",
			Message{Type: TypeJoin}},
		{"empty arrays and maps are absent", "a3" + hType + hJoin + hSupported + "80" + hMeta + "a0",
			Message{Type: TypeJoin, PeerMetadata: &PeerMetadata{}}},
		{"timestamp as float64", "a2" + hType + hRHC + hNewHeads + "a1" + hS + "a1" + hTimestamp + "fb 4279aaaac267b000",
			Message{Type: TypeRemoteHeadsChanged, NewHeads: map[string]RemoteHeads{"s": {Timestamp: 1763800000123}}}},
		{"unknown type with odd fields", "a3" + hType + "63 666f6f" + hSenderID + "01" + hCount + "63 616263",
			Message{Type: "foo"}},
	}
	for _, tt := range tests {
		frame := frameHex(t, tt.frame)
		got, err := Decode(frame)
		if err != nil {
			t.Errorf("%s: Decode(%x) = %v", tt.name, frame, err)
			continue
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: Decode(%x) = %+v, want %+v", tt.name, frame, got, tt.want)
		}
	}
}

func TestDecodeRejects(t *testing.T) {
	tests := []struct {
		name   string
		frame  string
		reason string // a word the error must contain
	}{
		{"empty frame", "", "empty"},
		{"array", "81 01", "array"},
		{"integer", "01", "unsigned integer"},
		{"tagged map", "d9d9f7 a1" + hType + hJoin, "tag"},
		{"no type", "a1" + hSenderID + "61 61", "no type"},
		{"null type", "a1" + hType + "f6", "no type"},
		{"integer type", "a1" + hType + "01", "type"},
		{"integer senderId", "a2" + hType + hSync + hSenderID + "01", "senderId"},
		{"text data", "a2" + hType + hSync + hData + "61 61", "data"},
		{"tag 64 around text", "a2" + hType + hSync + hData + "d840 61 61", "data"},
		{"text count", "a2" + hType + hEphemeral + hCount + "61 31", "count"},
		{"fractional count", "a2" + hType + hEphemeral + hCount + "fb 3ff8000000000000", "count"},
		{"NaN count", "a2" + hType + hEphemeral + hCount + "f9 7e00", "count"},
		{"negative count", "a2" + hType + hEphemeral + hCount + "20", "count"},
		{"count past 2^53", "a2" + hType + hEphemeral + hCount + "1b 0020000000000000", "count"},
		{"peerMetadata array", "a2" + hType + hJoin + hMeta + "80", "peerMetadata"},
		{"text isEphemeral", "a2" + hType + hJoin + hMeta + "a1" + hIsEphem + "61 31", "isEphemeral"},
		{"integer protocol version", "a2" + hType + hJoin + hSupported + "81 01", "supportedProtocolVersions"},
		{"newHeads entry not a map", "a2" + hType + hRHC + hNewHeads + "a1" + hS + "01", "newHeads"},
		{"newHeads integer key", "a2" + hType + hRHC + hNewHeads + "a1 01 a0", "newHeads"},
		{"duplicate key", "a2" + hType + hJoin + hType + hSync, "duplicate"},
		{"byte string key", "a2" + hType + hJoin + "41 00 01", "byte string"},
		{"trailing bytes", "a1" + hType + hJoin + "00", "extraneous"},
		{"truncated", "a2" + hType + hJoin + hSenderID, "EOF"},
		{"invalid UTF-8", "a1" + hType + "62 c328", "UTF-8"},
	}
	for _, tt := range tests {
		frame := frameHex(t, tt.frame)
		m, err := Decode(frame)
		if !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: Decode(%x) = %+v, %v; want ErrMalformed", tt.name, frame, m, err)
			continue
		}
		if !strings.Contains(err.Error(), tt.reason) {
			t.Errorf("%s: Decode(%x) error %q does not mention %q", tt.name, frame, err, tt.reason)
		}
	}
}

func TestDecodeTooLarge(t *testing.T) {
	frame := make([]byte, MaxFrameSize+1)
	frame[0] = 0xa0
	if _, err := Decode(frame); !errors.Is(err, ErrTooLarge) {
		t.Errorf("Decode(%d bytes) = %v, want ErrTooLarge", len(frame), err)
	}
}

func TestDecodeDoesNotAlias(t *testing.T) {
	frame, _ := Encode(Message{Type: TypeSync, SenderID: "s", Data: []byte{1, 2, 3}})
	m, err := Decode(frame)
	if err != nil {
		t.Fatal(err)
	}
	for i := range frame {
		frame[i] = 0
	}
	if !bytes.Equal(m.Data, []byte{1, 2, 3}) || m.SenderID != "s" {
		t.Errorf("decoded message changed with its frame: %+v", m)
	}
}

func TestValidate(t *testing.T) {
	for _, m := range samples() {
		if !m.Type.Known() {
			if err := m.Validate(); !errors.Is(err, ErrInvalid) {
				t.Errorf("Validate(unknown %q) = %v, want ErrInvalid", m.Type, err)
			}
			continue
		}
		if err := m.Validate(); err != nil {
			t.Errorf("Validate(%s) = %v", m.Type, err)
		}
	}

	// Each required field, removed, makes the message invalid.
	clear := map[string]func(*Message){
		"senderId":                func(m *Message) { m.SenderID = "" },
		"targetId":                func(m *Message) { m.TargetID = "" },
		"documentId":              func(m *Message) { m.DocumentID = "" },
		"data":                    func(m *Message) { m.Data = []byte{} },
		"selectedProtocolVersion": func(m *Message) { m.SelectedProtocolVersion = "" },
		"message":                 func(m *Message) { m.ErrorMessage = "" },
		"count":                   func(m *Message) { m.Count = 0 },
		"sessionId":               func(m *Message) { m.SessionID = "" },
		"newHeads":                func(m *Message) { m.NewHeads = nil },
		"documentIds":             func(m *Message) { m.DocumentIDs = nil },
		"code":                    func(m *Message) { m.ErrorCode = "" },
	}
	requiredKeys := map[Type][]string{
		TypeJoin:                     {"senderId"},
		TypePeer:                     {"senderId", "targetId", "selectedProtocolVersion"},
		TypeError:                    {"message"},
		TypeLeave:                    {"senderId"},
		TypeSync:                     {"senderId", "targetId", "documentId", "data"},
		TypeRequest:                  {"senderId", "targetId", "documentId", "data"},
		TypeDocUnavailable:           {"senderId", "targetId", "documentId"},
		TypeEphemeral:                {"senderId", "targetId", "documentId", "data", "count", "sessionId"},
		TypeRemoteHeadsChanged:       {"senderId", "targetId", "documentId", "newHeads"},
		TypeRemoteSubscriptionChange: {"senderId", "targetId"},
		TypeHavenList:                {"senderId"},
		TypeHavenFetch:               {"senderId", "documentIds"},
		TypeHavenDoc:                 {"senderId", "documentId"},
		TypeHavenAudit:               {"senderId", "data", "count"},
		TypeHavenAuditAck:            {"senderId"},
		TypeHavenTrust:               {"senderId", "data"},
		TypeHavenCertReq:             {"senderId", "data"},
		TypeHavenLeaver:              {"senderId", "data"},
		TypeHavenWho:                 {"senderId", "data"},
		TypeHavenSearch:              {"senderId", "data"},
		TypeHavenOpen:                {"senderId", "data"},
		TypeHavenReview:              {"senderId", "data"},
		TypeHavenGone:                {"senderId", "documentIds", "code"},
	}
	for _, m := range samples() {
		for _, key := range requiredKeys[m.Type] {
			broken := m
			clear[key](&broken)
			err := broken.Validate()
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), key) {
				t.Errorf("Validate(%s without %s) = %v, want ErrInvalid naming %s", m.Type, key, err, key)
			}
		}
	}
	if len(requiredKeys) != len(required) {
		t.Errorf("test covers %d types, package requires fields of %d", len(requiredKeys), len(required))
	}

	bad := Message{Type: TypeSync, SenderID: "s", TargetID: "t", DocumentID: "not-a-doc-id", Data: []byte{1}}
	if err := bad.Validate(); !errors.Is(err, ErrInvalid) {
		t.Errorf("Validate(malformed documentId) = %v, want ErrInvalid", err)
	}
}

func TestLogValueOmitsData(t *testing.T) {
	m := Message{Type: TypeSync, SenderID: "s", DocumentID: docID, Data: []byte("Mrs Example's note")}
	got := m.LogValue().String()
	if strings.Contains(got, "note") || !strings.Contains(got, "bytes=18") || !strings.Contains(got, docID) {
		t.Errorf("LogValue() = %s, want IDs and size, no data", got)
	}
}
