package nhs

import (
	"errors"
	"testing"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in   string
		mode Mode
		want Number
		err  error
	}{
		{"943 476 5919", Live, "9434765919", nil}, // the example DOMAIN.md shows
		{"9434765919", Live, "9434765919", nil},
		{" 943-476-5919 ", Live, "9434765919", nil},
		{"943 476 5918", Live, "", ErrCheck},
		{"943 476 591", Live, "", ErrFormat},
		{"943 476 59190", Live, "", ErrFormat},
		{"943x4765919", Live, "", ErrFormat},
		{"", Live, "", ErrFormat},
		{"999 000 0018", Live, "", ErrTestRange},
		{"999 000 0018", Demo, "9990000018", nil},
		{"999 000 0019", Demo, "", ErrCheck},
		{"123 456 7890", Demo, "", ErrCheck}, // remainder 10: no valid check digit exists
		{"000 000 0000", Demo, "0000000000", nil},
	} {
		got, err := Parse(tc.in, tc.mode)
		if !errors.Is(err, tc.err) || got != tc.want {
			t.Errorf("Parse(%q, %v) = %q, %v, want %q, %v", tc.in, tc.mode, got, err, tc.want, tc.err)
		}
	}
}

// Modulus 11 worked by hand for 943 476 591: 9×10+4×9+3×8+4×7+7×6+6×5+5×4+9×3+1×2
// = 299; 299 mod 11 = 2; 11−2 = 9.
func TestCheckDigitByHand(t *testing.T) {
	if d, ok := CheckDigit("943476591"); !ok || d != 9 {
		t.Fatalf("CheckDigit(943476591) = %d, %v, want 9, true", d, ok)
	}
	if _, ok := CheckDigit("123456789"); ok {
		// 1×10+2×9+3×8+4×7+5×6+6×5+7×4+8×3+9×2 = 210; 210 mod 11 = 1; check 10: invalid
		t.Fatal("CheckDigit(123456789) ok, want invalid (remainder gives 10)")
	}
}

func TestString(t *testing.T) {
	if got := Number("9434765919").String(); got != "943 476 5919" {
		t.Fatalf("String() = %q, want 943 476 5919", got)
	}
}

// Every valid number in a block round-trips through its display form.
func TestDisplayRoundTrip(t *testing.T) {
	n := 0
	for i := 0; i < 20000; i++ {
		nine := []byte("999000000")
		v := i
		for j := 8; j >= 4; j-- {
			nine[j] = byte('0' + v%10)
			v /= 10
		}
		d, ok := CheckDigit(string(nine))
		if !ok {
			continue
		}
		num := Number(string(nine) + string('0'+d))
		back, err := Parse(num.String(), Demo)
		if err != nil || back != num {
			t.Fatalf("Parse(%q) = %q, %v", num.String(), back, err)
		}
		n++
	}
	if n < 15000 {
		t.Fatalf("only %d valid numbers in 20000: check digit rule wrong?", n)
	}
}
