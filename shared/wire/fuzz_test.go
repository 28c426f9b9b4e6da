package wire

import (
	"encoding/hex"
	"reflect"
	"testing"
)

// FuzzDecode: Decode never panics, and whatever it accepts re-encodes to a
// frame that decodes to the same message. Seeds are the real JS frames.
func FuzzDecode(f *testing.F) {
	for _, fr := range loadJSFrames(f) {
		b, err := hex.DecodeString(fr.Hex)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, m := range samples() {
		b, err := Encode(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{})
	f.Add([]byte{0xa0})
	f.Add([]byte{0xbf, 0xff})
	f.Fuzz(func(t *testing.T, frame []byte) {
		m, err := Decode(frame)
		if err != nil {
			return
		}
		_ = m.Validate()
		_ = m.LogValue().String()
		again, err := Encode(m)
		if err != nil {
			t.Fatalf("Encode(Decode(%x)) = %v", frame, err)
		}
		back, err := Decode(again)
		if err != nil {
			t.Fatalf("Decode(%x) = %v (re-encoded from %x)", again, err, frame)
		}
		if !reflect.DeepEqual(back, m) {
			t.Fatalf("Decode(Encode(m)) = %+v, want %+v (frame %x)", back, m, frame)
		}
	})
}
