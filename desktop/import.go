package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"

	"haven/desktop/internal/app"
)

// runImport is `desktop import`: it admits the residents of a CSV file to
// the computer's home as the member of staff -unlock names, prints
// "imported N, refused M" and a line for each row not imported, and
// returns how many rows it refused. The changes go to the relay the next
// time the desktop runs.
func runImport(args []string, out io.Writer, log *slog.Logger) (int, error) {
	fs := flag.NewFlagSet("desktop import", flag.ContinueOnError)
	dir := fs.String("data", defaultDir(), "data folder")
	unlock := fs.String("unlock", "", "NAME:PIN of the member of staff who admits them")
	home := fs.String("home", "", "the home to admit to (default: the computer's, when it holds one)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: desktop import -data DIR -unlock \"NAME:PIN\" [-home ID] FILE.csv\n\nThe header row names the columns %v; %v may follow.\n",
			app.ImportColumns, app.ImportOptional)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 0, err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return 0, errors.New("name one CSV file")
	}
	if *unlock == "" {
		return 0, errors.New("-unlock NAME:PIN is needed: an import is admitted by a member of staff, and audited")
	}
	f, err := os.Open(fs.Arg(0))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	a, err := app.Open(*dir, app.Options{Logger: log, NoSync: true})
	if err != nil {
		return 0, err
	}
	defer a.Close()
	if err := unlockAs(a, *unlock); err != nil {
		return 0, err
	}
	h := *home
	if h == "" {
		homes := a.Homes()
		if len(homes) != 1 {
			return 0, fmt.Errorf("this computer holds %d homes' lists; choose one with -home (%v)", len(homes), homes)
		}
		h = homes[0]
	}
	res, err := a.ImportResidents(h, f)
	if err != nil {
		return 0, err
	}
	fmt.Fprintf(out, "imported %d, refused %d\n", res.Imported, len(res.Refused))
	for _, l := range res.Refused {
		fmt.Fprintf(out, "line %d: %s\n", l.Line, l.Reason)
	}
	for _, l := range res.Held {
		fmt.Fprintf(out, "line %d: %s; not imported again\n", l.Line, l.Reason)
	}
	return len(res.Refused), nil
}
