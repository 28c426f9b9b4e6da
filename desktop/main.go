// Command desktop is Haven's desktop client for care homes, GP hubs and the
// advice line. main only wires: flags, the application layer (package app)
// and the window (package ui).
//
//	desktop                                  open the data folder; enrol on first run
//	desktop -relay URL -enroll-code CODE -demo
//	                                         enrol with the demo staff accounts, then open
//	desktop -seed-demo 40                    an offline demo folder with 40 residents
//	desktop -seed-demo-advice 6              an offline demo advice line after a night of 6 calls
//	desktop -unlock "Dr Ada Quill:271828" -open-first -screenshot out.png
//	                                         render, save a PNG of the window, exit
//	desktop import -data DIR -unlock "NAME:PIN" FILE.csv
//	                                         admit residents from a CSV file
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"image"
	"image/png"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"fyne.io/fyne/v2"
	fyneapp "fyne.io/fyne/v2/app"

	"haven/desktop/internal/app"
	"haven/desktop/internal/ui"
)

func main() {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if len(os.Args) > 1 && os.Args[1] == "import" {
		refused, err := runImport(os.Args[2:], os.Stdout, log)
		if err != nil && !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "import:", err)
			os.Exit(2)
		}
		if refused > 0 {
			os.Exit(1)
		}
		return
	}
	if len(os.Args) > 1 && os.Args[1] == "export" {
		if err := runExport(os.Args[2:], os.Stdout, log); err != nil {
			if !errors.Is(err, flag.ErrHelp) {
				fmt.Fprintln(os.Stderr, "export:", err)
				os.Exit(2)
			}
		}
		return
	}
	if err := run(os.Args[1:], log); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		log.Error("haven desktop", "err", err)
		os.Exit(1)
	}
}

// config is what the flags say.
type config struct {
	dir                    string
	relay, code            string
	demo                   bool
	seed, conflicts, notes int
	seedAdvice             int
	tamper                 int
	screenshot             string
	unlock                 string
	openFirst              bool
	show                   string
}

func defaultDir() string {
	if d := os.Getenv("HAVEN_DESKTOP_DATA"); d != "" {
		return d
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".local", "share", "haven", "desktop")
	}
	return "haven-desktop"
}

func parse(args []string) (config, error) {
	var c config
	fs := flag.NewFlagSet("desktop", flag.ContinueOnError)
	fs.StringVar(&c.dir, "data", defaultDir(), "data folder (default $HAVEN_DESKTOP_DATA or ~/.local/share/haven/desktop)")
	fs.StringVar(&c.relay, "relay", "", "relay address for enrolment, e.g. http://127.0.0.1:8450; a relay of several nodes may be given as their addresses, comma-separated")
	fs.StringVar(&c.code, "enroll-code", "", "one-time enrolment code from syncd")
	fs.BoolVar(&c.demo, "demo", false, "with -relay and -enroll-code: enrol now with the demo staff accounts")
	fs.IntVar(&c.seed, "seed-demo", 0, "set up an empty data folder as an offline demo with this many residents")
	fs.IntVar(&c.seedAdvice, "seed-demo-advice", 0, "set up an empty data folder as an offline demo advice line holding this many records opened for calls")
	fs.IntVar(&c.conflicts, "demo-conflicts", 2, "with -seed-demo: residents given a CPR conflict, as two offline computers would make one")
	fs.IntVar(&c.notes, "demo-notes", 6, "with -seed-demo: notes per resident")
	fs.IntVar(&c.tamper, "demo-tamper", 0, "with -seed-demo: residents given a forged CPR entry, as an altered copy of the folder would hold one")
	fs.StringVar(&c.screenshot, "screenshot", "", "save a PNG of the window once the first view is ready, then exit")
	fs.StringVar(&c.unlock, "unlock", "", "NAME:PIN to unlock at start (demos and screenshots)")
	fs.BoolVar(&c.openFirst, "open-first", false, "open the first resident's front sheet")
	fs.StringVar(&c.show, "show", "", "open a view at start instead: handover, staff, reports or services")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	return c, nil
}

func run(args []string, log *slog.Logger) error {
	c, err := parse(args)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(c.dir, 0o700); err != nil {
		return err
	}
	if err := prepare(c, log); err != nil {
		return err
	}
	a, err := app.Open(c.dir, app.Options{Logger: log})
	switch {
	case errors.Is(err, app.ErrNotEnrolled):
		a = nil // the window starts with the enrolment screen
	case err != nil:
		return err
	}
	if c.unlock != "" {
		if err := unlockAs(a, c.unlock); err != nil {
			return err
		}
	}

	if c.screenshot != "" && os.Getenv("GALLIUM_DRIVER") == "" {
		// Mesa's llvmpipe (the software renderer under Xvfb) hands back an
		// empty front buffer to glReadPixels, so Canvas.Capture would be
		// blank; its softpipe renderer reads back what was drawn. Set before
		// the window opens: Mesa reads it when GL starts.
		os.Setenv("GALLIUM_DRIVER", "softpipe")
	}
	fa := fyneapp.NewWithID("org.haven.desktop")
	opts := ui.Options{
		Logger: log, Relay: c.relay, Code: c.code, OpenFirst: c.openFirst, Show: c.show,
		Enroll: func(ctx context.Context, req app.EnrollRequest) (*app.App, error) {
			if err := app.Enroll(ctx, c.dir, req); err != nil {
				return nil, err
			}
			return app.Open(c.dir, app.Options{Logger: log})
		},
	}
	ready := make(chan struct{})
	if c.screenshot != "" {
		opts.OnReady = func() { close(ready) }
	}
	w := ui.New(fa, a, opts)
	shot := make(chan error, 1)
	if c.screenshot != "" {
		go func() {
			select {
			case <-ready:
				shot <- capture(w.Window(), c.screenshot, log)
			case <-time.After(2 * time.Minute):
				shot <- errors.New("the window was not ready within 2 minutes: no screenshot")
			}
			fyne.Do(fa.Quit)
		}()
	}
	w.Window().ShowAndRun()
	w.Close()
	if a := w.App(); a != nil {
		if err := a.Close(); err != nil {
			log.Error("closing the data folder", "err", err)
		}
	}
	if c.screenshot != "" {
		return <-shot
	}
	return nil
}

// prepare sets the data folder up from the command line: an offline demo,
// or enrolment with the demo accounts. A folder already set up is left alone.
func prepare(c config, log *slog.Logger) error {
	_, statErr := os.Stat(filepath.Join(c.dir, "device.json"))
	enrolled := statErr == nil
	switch {
	case (c.seed > 0 || c.seedAdvice > 0) && enrolled:
		log.Info("data folder already set up: not seeding", "dir", c.dir)
	case c.seedAdvice > 0:
		if err := app.SeedDemoAdviceLine(c.dir, c.seedAdvice, c.notes, time.Now()); err != nil {
			return err
		}
		log.Info("offline demo advice line set up", "dir", c.dir, "records", c.seedAdvice)
	case c.seed > 0:
		start := time.Now()
		if err := app.SeedDemo(c.dir, c.seed, c.notes, time.Now()); err != nil {
			return err
		}
		if err := app.AddDemoConflicts(c.dir, c.conflicts, time.Now()); err != nil {
			return err
		}
		if err := app.AddDemoTamper(c.dir, c.tamper, time.Now()); err != nil {
			return err
		}
		log.Info("offline demo folder set up", "dir", c.dir, "residents", c.seed, "conflicts", c.conflicts, "took", time.Since(start).Round(time.Millisecond))
	case c.relay != "" && c.code != "" && c.demo && !enrolled:
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := app.Enroll(ctx, c.dir, app.EnrollRequest{RelayURL: c.relay, Code: c.code, Demo: true}); err != nil {
			return fmt.Errorf("enrolment: %w", err)
		}
		log.Info("enrolled with the demo accounts", "dir", c.dir)
	}
	return nil
}

// unlockAs signs in NAME:PIN before the window opens.
func unlockAs(a *app.App, namePIN string) error {
	if a == nil {
		return errors.New("-unlock: this computer is not set up yet")
	}
	i := strings.LastIndex(namePIN, ":")
	if i < 0 {
		return errors.New("-unlock wants NAME:PIN")
	}
	name, pin := namePIN[:i], namePIN[i+1:]
	for _, s := range a.StaffList() {
		if s.Name == name {
			_, err := a.Unlock(s.ID, pin)
			return err
		}
	}
	return fmt.Errorf("-unlock: nobody called %q can use this computer", name)
}

// capture saves the window as a PNG once what it shows has settled: Fyne
// paints new content over its next frames, so it captures until two
// frames a moment apart are the same (or a few seconds have passed).
func capture(w fyne.Window, path string, log *slog.Logger) error {
	var prev *image.NRGBA
	deadline := time.Now().Add(15 * time.Second)
	time.Sleep(time.Second) // let the window open and paint before reading it back
	for {
		time.Sleep(400 * time.Millisecond)
		var img image.Image
		fyne.DoAndWait(func() { img = w.Canvas().Capture() })
		cur := toNRGBA(img)
		settled := prev != nil && string(prev.Pix) == string(cur.Pix) && !uniform(cur)
		prev = cur
		if settled || time.Now().After(deadline) {
			break
		}
	}
	if uniform(prev) {
		return errors.New("the window capture is blank: is the display's OpenGL able to read back frames?")
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := png.Encode(f, prev); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	log.Info("screenshot saved", "path", path, "width", prev.Bounds().Dx(), "height", prev.Bounds().Dy())
	return nil
}

// uniform reports an image of one colour (a window not painted yet).
func uniform(img *image.NRGBA) bool {
	p := img.Pix
	for i := 4; i+3 < len(p); i += 4 {
		if p[i] != p[0] || p[i+1] != p[1] || p[i+2] != p[2] {
			return false
		}
	}
	return true
}

// toNRGBA copies a window capture, opaque: a window's pixels are opaque,
// but the read-back framebuffer may carry no alpha (all zero), which a
// colour-model conversion would turn into transparent black.
func toNRGBA(img image.Image) *image.NRGBA {
	b := img.Bounds()
	out := image.NewNRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
	for y := 0; y < b.Dy(); y++ {
		for x := 0; x < b.Dx(); x++ {
			r, g, bl, _ := img.At(b.Min.X+x, b.Min.Y+y).RGBA()
			i := out.PixOffset(x, y)
			out.Pix[i], out.Pix[i+1], out.Pix[i+2], out.Pix[i+3] = uint8(r>>8), uint8(g>>8), uint8(bl>>8), 0xff
		}
	}
	return out
}
