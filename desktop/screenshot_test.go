package main

import (
	"context"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
	"time"
)

// TestScreenshot builds the real desktop binary and runs its screenshot
// mode under Xvfb on a fresh offline demo folder, as `make screenshots`
// does: the front sheet of the first resident (who has a CPR conflict)
// must be captured, be a real picture rather than a blank window, and show
// the conflict's red.
func TestScreenshot(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the desktop and runs it under Xvfb; skipped with -short")
	}
	xvfb, err := exec.LookPath("xvfb-run")
	if err != nil {
		t.Skip("xvfb-run is not installed (make deps installs it): cannot run the screenshot test")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to build the desktop with")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	tmp := t.TempDir()
	bin := filepath.Join(tmp, "desktop")
	build := exec.CommandContext(ctx, goBin, "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	shot := filepath.Join(tmp, "front-sheet.png")
	cmd := exec.CommandContext(ctx, xvfb, "-a", "-s", "-screen 0 1400x900x24",
		bin, "-data", filepath.Join(tmp, "data"), "-seed-demo", "12", "-unlock", "Dr Ada Quill:271828", "-open-first", "-screenshot", shot)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("screenshot run: %v\n%s", err, out)
	}
	// Logs carry IDs and sizes, never health data such as NHS numbers.
	if regexp.MustCompile(`999 ?\d{3} ?\d{4}`).Match(out) {
		t.Fatalf("the log holds an NHS number:\n%s", out)
	}

	f, err := os.Open(shot)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("decode %s: %v", shot, err)
	}
	b := img.Bounds()
	if b.Dx() < 1000 || b.Dy() < 600 {
		t.Fatalf("screenshot is %dx%d; want the whole window (1280x800)", b.Dx(), b.Dy())
	}
	colours, red := map[[3]uint8]bool{}, 0
	for y := b.Min.Y; y < b.Max.Y; y += 2 {
		for x := b.Min.X; x < b.Max.X; x += 2 {
			r, g, bl, _ := img.At(x, y).RGBA()
			c := [3]uint8{uint8(r >> 8), uint8(g >> 8), uint8(bl >> 8)}
			colours[c] = true
			if near(c, [3]uint8{0xb7, 0x1c, 0x1c}) { // the theme's conflict red
				red++
			}
		}
	}
	if len(colours) < 50 {
		t.Fatalf("screenshot has %d colours: a blank or unpainted window", len(colours))
	}
	if red < 500 {
		t.Fatalf("screenshot has %d red samples; the first resident's CPR conflict should show in red", red)
	}
	t.Logf("%s: %dx%d, %d colours, %d red samples", shot, b.Dx(), b.Dy(), len(colours), red)
}

func near(a, b [3]uint8) bool {
	for i := range a {
		d := int(a[i]) - int(b[i])
		if d < -10 || d > 10 {
			return false
		}
	}
	return true
}
