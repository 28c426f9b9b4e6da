// Package nhs validates and formats NHS numbers: ten digits whose last is a
// Modulus 11 check digit, shown 3-3-4 ("943 476 5919").
package nhs

import (
	"errors"
	"fmt"
	"strings"
)

// Number is a valid NHS number held as its ten digits.
type Number string

// Mode says whether numbers from the test range may be used.
type Mode int

const (
	// Live refuses the 999 test range: those numbers are never issued, so
	// one in a live record means a wrong or made-up number.
	Live Mode = iota
	// Demo accepts any valid number, including the test range that demo
	// and test data must use.
	Demo
)

var (
	ErrFormat    = errors.New("an NHS number has 10 digits")
	ErrCheck     = errors.New("the NHS number's check digit is wrong")
	ErrTestRange = errors.New("999 numbers are for testing and are never issued")
)

// Parse accepts ten digits, optionally grouped with spaces or hyphens, checks
// the Modulus 11 check digit and, in Live mode, refuses the test range.
func Parse(s string, mode Mode) (Number, error) {
	var b strings.Builder
	for _, r := range strings.TrimSpace(s) {
		switch {
		case r >= '0' && r <= '9':
			b.WriteRune(r)
		case r == ' ' || r == '-':
		default:
			return "", fmt.Errorf("%w; %q contains %q", ErrFormat, s, r)
		}
	}
	d := b.String()
	if len(d) != 10 {
		return "", fmt.Errorf("%w; %q has %d", ErrFormat, s, len(d))
	}
	check, ok := CheckDigit(d[:9])
	if !ok || check != d[9]-'0' {
		return "", ErrCheck
	}
	n := Number(d)
	if mode == Live && n.InTestRange() {
		return "", ErrTestRange
	}
	return n, nil
}

// CheckDigit computes the Modulus 11 check digit of the first nine digits.
// ok is false when the remainder makes the number invalid (check 10).
func CheckDigit(nine string) (digit byte, ok bool) {
	if len(nine) != 9 {
		return 0, false
	}
	sum := 0
	for i := 0; i < 9; i++ {
		c := nine[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		sum += int(c-'0') * (10 - i)
	}
	check := 11 - sum%11
	switch check {
	case 11:
		return 0, true
	case 10:
		return 0, false
	}
	return byte(check), true
}

// InTestRange reports 999 000 0000 to 999 999 9999.
func (n Number) InTestRange() bool { return strings.HasPrefix(string(n), "999") }

// String shows the number 3-3-4.
func (n Number) String() string {
	if len(n) != 10 {
		return string(n)
	}
	return string(n[:3]) + " " + string(n[3:6]) + " " + string(n[6:])
}

// Digits is the bare ten digits, as stored and searched.
func (n Number) Digits() string { return string(n) }
