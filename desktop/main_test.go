package main

import (
	"errors"
	"flag"
	"path/filepath"
	"testing"
)

func TestFlags(t *testing.T) {
	t.Setenv("HAVEN_DESKTOP_DATA", "/srv/haven-desk")
	c, err := parse(nil)
	if err != nil || c.dir != "/srv/haven-desk" || c.conflicts != 2 || c.seed != 0 {
		t.Fatalf("defaults = %+v, %v", c, err)
	}
	t.Setenv("HAVEN_DESKTOP_DATA", "")
	t.Setenv("HOME", "/home/nurse")
	if c, _ := parse(nil); c.dir != filepath.Join("/home/nurse", ".local", "share", "haven", "desktop") {
		t.Fatalf("default folder %q", c.dir)
	}
	c, err = parse([]string{"-data", "d", "-seed-demo", "40", "-unlock", "Dr Ada Quill:271828", "-open-first", "-screenshot", "out.png"})
	if err != nil || c.dir != "d" || c.seed != 40 || c.unlock != "Dr Ada Quill:271828" || !c.openFirst || c.screenshot != "out.png" {
		t.Fatalf("parse = %+v, %v", c, err)
	}
	if c, err := parse([]string{"-seed-demo-advice", "6"}); err != nil || c.seedAdvice != 6 || c.seed != 0 {
		t.Fatalf("parse -seed-demo-advice = %+v, %v", c, err)
	}
	if _, err := parse([]string{"-nonsense"}); err == nil || errors.Is(err, flag.ErrHelp) {
		t.Fatalf("unknown flag = %v", err)
	}
	if _, err := parse([]string{"stray"}); err == nil {
		t.Fatal("a stray argument was accepted")
	}
}

func TestUnlockAsWantsNameAndPIN(t *testing.T) {
	if err := unlockAs(nil, "x:1"); err == nil {
		t.Fatal("-unlock on a computer not set up was accepted")
	}
}
