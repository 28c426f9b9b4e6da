package wire

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/fxamacker/cbor/v2"
)

// These tests hold the codec to the real JavaScript implementation, both ways:
// frames written by automerge-repo's encoder (testdata/js_frames.json, made by
// syncd/interop/fixtures.mjs) must decode to what automerge-repo's decoder saw
// in them, and frames we encode must look, to automerge-repo's decoder, like
// the messages we meant.

const fixturesFile = "testdata/js_frames.json"

// jsFrame is one entry of the fixtures file. Message is automerge-repo's own
// decoding of Hex, with bytes as {"$bytes": hex} and undefined as {"$undefined": true}.
type jsFrame struct {
	Name    string         `json:"name"`
	Source  string         `json:"source"` // "encoder" or "live"
	Hex     string         `json:"hex"`
	Message map[string]any `json:"message"`
}

func loadJSFrames(tb testing.TB) []jsFrame {
	tb.Helper()
	raw, err := os.ReadFile(fixturesFile)
	if err != nil {
		tb.Fatalf("read fixtures: %v (regenerate with: cd syncd/interop && node fixtures.mjs)", err)
	}
	var file struct {
		Frames []jsFrame `json:"frames"`
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&file); err != nil {
		tb.Fatalf("parse %s: %v", fixturesFile, err)
	}
	if len(file.Frames) == 0 {
		tb.Fatalf("%s has no frames", fixturesFile)
	}
	return file.Frames
}

func TestDecodeJSFrames(t *testing.T) {
	frames := loadJSFrames(t)
	seen := map[Type]bool{}
	for _, f := range frames {
		frame, err := hex.DecodeString(f.Hex)
		if err != nil {
			t.Fatalf("%s: bad hex: %v", f.Name, err)
		}
		got, err := Decode(frame)
		if err != nil {
			t.Errorf("%s: Decode(%s) = %v", f.Name, f.Hex, err)
			continue
		}
		want := messageFromJS(t, f.Name, f.Message)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: Decode = %+v\nwant (as JS decoded it) %+v", f.Name, got, want)
		}
		seen[got.Type] = true

		// Everything automerge-repo really sends is valid; the legacy join,
		// the 1.x leave and the unknown type are not from 2.5 senders.
		if got.Type.Known() && got.Type != TypeLeave && f.Name != "join-legacy" {
			if err := got.Validate(); err != nil {
				t.Errorf("%s: Validate = %v", f.Name, err)
			}
		}

		// What we decoded re-encodes to a frame that decodes the same.
		again, err := Encode(got)
		if err != nil {
			t.Fatalf("%s: Encode = %v", f.Name, err)
		}
		if back, err := Decode(again); err != nil || !reflect.DeepEqual(back, got) {
			t.Errorf("%s: Decode(Encode(m)) = %+v, %v; want %+v", f.Name, back, err, got)
		}
	}
	for typ := range schemas {
		if !seen[typ] && !strings.HasPrefix(string(typ), "haven-") { // Haven's own types are not JavaScript's
			t.Errorf("fixtures have no %s frame", typ)
		}
	}
}

// messageFromJS builds the Message a JS-decoded object stands for, using only
// the protocol's key names, so it checks Decode without sharing its code.
func messageFromJS(t *testing.T, name string, js map[string]any) Message {
	t.Helper()
	str := func(v any) string {
		s, _ := v.(string)
		return s
	}
	strs := func(v any) []string {
		var out []string
		for _, x := range asSlice(v) {
			out = append(out, str(x))
		}
		return out
	}
	num := func(v any) int64 {
		n, ok := v.(json.Number)
		if !ok {
			return 0
		}
		i, err := n.Int64()
		if err != nil {
			t.Fatalf("%s: number %v is not an integer", name, v)
		}
		return i
	}
	m := Message{Type: Type(str(js["type"])), SenderID: str(js["senderId"]), TargetID: str(js["targetId"])}
	if !m.Type.Known() {
		return m
	}
	fields := schemas[m.Type]
	has := func(f field) bool { return fields&f != 0 }
	if has(fDocument) {
		m.DocumentID = str(js["documentId"])
	}
	if has(fData) {
		if b, ok := js["data"].(map[string]any); ok {
			m.Data, _ = hex.DecodeString(str(b["$bytes"]))
		}
	}
	if md, ok := js["peerMetadata"].(map[string]any); ok && has(fPeerMetadata) {
		eph, _ := md["isEphemeral"].(bool)
		m.PeerMetadata = &PeerMetadata{StorageID: str(md["storageId"]), IsEphemeral: eph}
	}
	if has(fSupported) {
		m.SupportedProtocolVersions = strs(js["supportedProtocolVersions"])
	}
	if has(fSelected) {
		m.SelectedProtocolVersion = str(js["selectedProtocolVersion"])
	}
	if has(fErrorMessage) {
		m.ErrorMessage = str(js["message"])
	}
	if has(fCount) {
		m.Count = uint64(num(js["count"]))
	}
	if has(fSession) {
		m.SessionID = str(js["sessionId"])
	}
	if nh, ok := js["newHeads"].(map[string]any); ok && has(fNewHeads) && len(nh) > 0 {
		m.NewHeads = map[string]RemoteHeads{}
		for id, e := range nh {
			entry, _ := e.(map[string]any)
			m.NewHeads[id] = RemoteHeads{Heads: strs(entry["heads"]), Timestamp: num(entry["timestamp"])}
		}
	}
	if has(fAdd) {
		m.Add = strs(js["add"])
	}
	if has(fRemove) {
		m.Remove = strs(js["remove"])
	}
	return m
}

func asSlice(v any) []any {
	s, _ := v.([]any)
	return s
}

// TestJSDecodesGoFrames feeds every sample we encode to automerge-repo's own
// decoder and checks what it sees: the same fields, byte arrays as
// Uint8Array, plain numbers (never BigInt), no keys we did not mean.
func TestJSDecodesGoFrames(t *testing.T) {
	dir := interopDir(t)
	msgs := samples()
	var in bytes.Buffer
	for _, m := range msgs {
		frame, err := Encode(m)
		if err != nil {
			t.Fatalf("Encode(%s) = %v", m.Type, err)
		}
		fmt.Fprintf(&in, "%x\n", frame)
	}
	cmd := exec.Command("node", "decode.mjs")
	cmd.Dir = dir
	cmd.Stdin = &in
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node decode.mjs: %v\n%s", err, stderr.String())
	}

	lines := bufio.NewScanner(bytes.NewReader(out))
	lines.Buffer(nil, 1<<20)
	for i := 0; lines.Scan(); i++ {
		if i >= len(msgs) {
			t.Fatalf("decode.mjs printed more lines than frames: %s", lines.Text())
		}
		m := msgs[i]
		var res struct {
			Message       any    `json:"message"`
			IsRepoMessage bool   `json:"isRepoMessage"`
			Error         string `json:"error"`
		}
		dec := json.NewDecoder(strings.NewReader(lines.Text()))
		dec.UseNumber()
		if err := dec.Decode(&res); err != nil {
			t.Fatalf("decode.mjs output %q: %v", lines.Text(), err)
		}
		if res.Error != "" {
			t.Errorf("JS cannot decode our %s frame: %s", m.Type, res.Error)
			continue
		}
		if want := jsView(m); !reflect.DeepEqual(res.Message, want) {
			t.Errorf("JS decodes our %s frame as %v\nwant %v", m.Type, res.Message, want)
		}
		repoType := m.Type.Known() && m.Type != TypeJoin && m.Type != TypePeer && m.Type != TypeError && m.Type != TypeLeave &&
			!strings.HasPrefix(string(m.Type), "haven-") // JavaScript does not know Haven's types and drops them
		if res.IsRepoMessage != repoType {
			t.Errorf("JS isRepoMessage(our %s) = %v, want %v", m.Type, res.IsRepoMessage, repoType)
		}
	}
	if err := lines.Err(); err != nil {
		t.Fatal(err)
	}
}

// jsView is the object automerge-repo should decode from Encode(m), in
// decode.mjs's JSON form, written out from the protocol table in doc.go.
func jsView(m Message) any {
	v := map[string]any{"type": string(m.Type)}
	set := func(k, s string) {
		if s != "" {
			v[k] = s
		}
	}
	list := func(k string, ss []string) {
		if len(ss) > 0 {
			v[k] = ss
		}
	}
	set("senderId", m.SenderID)
	set("targetId", m.TargetID)
	if m.Type.Known() {
		set("documentId", m.DocumentID)
		if len(m.Data) > 0 {
			v["data"] = map[string]any{"$bytes": hex.EncodeToString(m.Data)}
		}
		if md := m.PeerMetadata; md != nil {
			o := map[string]any{"isEphemeral": md.IsEphemeral}
			if md.StorageID != "" {
				o["storageId"] = md.StorageID
			}
			v["peerMetadata"] = o
		}
		list("supportedProtocolVersions", m.SupportedProtocolVersions)
		set("selectedProtocolVersion", m.SelectedProtocolVersion)
		set("message", m.ErrorMessage)
		set("code", m.ErrorCode)
		if m.Count != 0 {
			v["count"] = m.Count
		}
		set("sessionId", m.SessionID)
		if len(m.NewHeads) > 0 {
			nh := map[string]any{}
			for id, h := range m.NewHeads {
				heads := h.Heads
				if heads == nil {
					heads = []string{}
				}
				nh[id] = map[string]any{"heads": heads, "timestamp": h.Timestamp}
			}
			v["newHeads"] = nh
		}
		list("add", m.Add)
		list("remove", m.Remove)
		list("documentIds", m.DocumentIDs)
		if len(m.Snapshot) > 0 {
			v["snapshot"] = map[string]any{"$bytes": hex.EncodeToString(m.Snapshot)}
		}
		if len(m.Chunks) > 0 {
			var cs []any
			for _, c := range m.Chunks {
				cs = append(cs, map[string]any{"$bytes": hex.EncodeToString(c)})
			}
			v["chunks"] = cs
		}
	}
	// Round-trip through JSON so numbers compare as json.Number.
	b, _ := json.Marshal(v)
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var out any
	_ = dec.Decode(&out)
	return out
}

// interopDir returns syncd/interop with its node modules installed. Without
// node the test is skipped, loudly; with node but without the modules it
// fails, since the interop claim would otherwise go unchecked.
func interopDir(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("node"); err != nil {
		t.Skip("SKIPPING JavaScript interop: node is not installed (apt-get install nodejs npm)")
	}
	dir, err := filepath.Abs(filepath.Join("..", "..", "syncd", "interop"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "@automerge", "automerge-repo")); err != nil {
		t.Fatalf("automerge-repo is not installed in %s: run `npm ci` there (or `npm install`; see its README)", dir)
	}
	return dir
}

// diagnose renders a frame in CBOR diagnostic notation, keeping key order.
func diagnose(frame []byte) (string, error) {
	dm, err := cbor.DiagOptions{ByteStringEncoding: cbor.ByteStringBase16Encoding}.DiagMode()
	if err != nil {
		return "", err
	}
	return dm.Diagnose(frame)
}
