package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"

	"haven/desktop/internal/app"
	"haven/shared/nhs"
)

// exportFormats are what -format names, in the order usage lists them.
var exportFormats = []string{app.PrintSummary, app.PrintTransfer, app.PrintPersonal, "fhir"}

// runExport is `desktop export`: it writes one resident's printed summary,
// hospital transfer pack or own copy (PDF), or their FHIR R4 document
// bundle, as the member of staff -unlock names. The app audits it as it
// does printing from the resident screen. The file is written beside its
// destination and renamed into place, so a failed export leaves no half
// file behind.
func runExport(args []string, out io.Writer, log *slog.Logger) error {
	fs := flag.NewFlagSet("desktop export", flag.ContinueOnError)
	dir := fs.String("data", defaultDir(), "data folder")
	unlock := fs.String("unlock", "", "NAME:PIN of the member of staff who prints or exports")
	resident := fs.String("resident", "", "the resident's NHS number")
	format := fs.String("format", app.PrintSummary, fmt.Sprintf("one of %v", exportFormats))
	reason := fs.String("reason", "", "the reason for transfer (the transfer pack asks for it)")
	outPath := fs.String("o", "", "the file to write")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: desktop export -data DIR -unlock \"NAME:PIN\" -resident NHSNUMBER -format %s -o FILE\n", formatList())
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch {
	case fs.NArg() != 0:
		fs.Usage()
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	case *unlock == "":
		return errors.New("-unlock NAME:PIN is needed: printing and export are done by a member of staff, and audited")
	case *resident == "":
		return errors.New("-resident NHSNUMBER is needed")
	case *outPath == "":
		return errors.New("-o FILE is needed")
	case !slices.Contains(exportFormats, *format):
		return fmt.Errorf("-format must be one of %s", formatList())
	}
	number, err := nhs.Parse(*resident, nhs.Demo)
	if err != nil {
		return fmt.Errorf("-resident: %w", err)
	}
	a, err := app.Open(*dir, app.Options{Logger: log, NoSync: true})
	if err != nil {
		return err
	}
	defer a.Close()
	if err := unlockAs(a, *unlock); err != nil {
		return err
	}
	id, err := a.ResidentByNHS(number.Digits())
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(*outPath), ".export-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // a no-op once renamed
	if *format == "fhir" {
		err = a.ExportFHIR(id, tmp)
	} else {
		err = a.Print(id, app.PrintRequest{Kind: *format, Reason: *reason}, tmp)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), *outPath); err != nil {
		return err
	}
	fmt.Fprintf(out, "wrote %s\n", *outPath)
	return nil
}

func formatList() string {
	s := ""
	for i, f := range exportFormats {
		if i > 0 {
			s += "|"
		}
		s += f
	}
	return s
}
