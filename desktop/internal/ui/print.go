package ui

import (
	"bytes"
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/storage"
	"fyne.io/fyne/v2/widget"

	"haven/desktop/internal/app"
)

// printForm asks what to print (and, for a transfer pack, why the
// resident is going to hospital), then where to save the PDF. The app
// makes and audits the printout; the form only collects the request.
type printForm struct {
	u      *UI
	rs     *residentScreen
	form   *fieldForm
	kind   *choice
	reason *widget.Entry
	save   *widget.Button
	dlg    dialog.Dialog
	req    app.PrintRequest // as asked, once the form is accepted
}

// printKindWords name the printouts as the form offers them.
var printKindWords = map[string]string{
	app.PrintSummary:  "Emergency summary (one page)",
	app.PrintTransfer: "Hospital transfer pack",
	app.PrintPersonal: "The person's own copy (plain words, no staff-only fields)",
}

func showPrint(u *UI, rs *residentScreen) *printForm {
	f := &printForm{u: u, rs: rs, form: newFieldForm()}
	f.reason = u.multiline("why they are going to hospital, as you would tell the crew", 3)
	f.kind = u.choice(app.PrintKinds, func(k string) string { return printKindWords[k] }, func(k string) {
		if k == app.PrintTransfer {
			f.reason.Enable()
		} else {
			f.reason.Disable()
		}
	})
	f.kind.SetValue(app.PrintSummary)
	f.save = u.primary("Save as PDF…", f.onSave)
	f.form.add("kind", "Print", f.kind)
	f.form.add("reason", "Reason for transfer", f.reason)
	body := container.NewVBox(
		wrapped("The printout shows this record as of now, with who printed it; printing is recorded in the audit log.", toneNeutral, false),
		f.form.object(), container.NewHBox(f.save, u.button("Cancel", func() { f.dlg.Hide() })))
	f.dlg = u.showDialog("Print: "+rs.fs.Name, u.scroll(body), fyne.NewSize(680, 420))
	return f
}

// onSave asks where to save the printout, then has the app make it (and
// audit it): a print cancelled at the file dialog is neither made nor
// recorded, and one the app refuses leaves no empty file behind.
func (f *printForm) onSave() {
	req := app.PrintRequest{Kind: f.kind.Value(), Reason: f.reason.Text}
	if req.Kind == app.PrintTransfer && strings.TrimSpace(req.Reason) == "" {
		f.form.show(&app.Problem{Message: "Not printed: the transfer pack needs the reason for transfer.",
			Fields: map[string]string{"reason": "Type why the resident is going to hospital"}})
		return
	}
	f.req = req
	f.dlg.Hide()
	save := dialog.NewFileSave(f.saveTo, f.u.win)
	save.SetFileName(strings.ReplaceAll(strings.ToLower(f.rs.fs.Name), " ", "-") + "-" + req.Kind + ".pdf")
	save.SetFilter(storage.NewExtensionFileFilter([]string{".pdf"}))
	save.Show()
}

// saveTo is the file dialog's answer: the printout made and written to w,
// or, if the app refuses it or the write fails, the file removed.
func (f *printForm) saveTo(w fyne.URIWriteCloser, err error) {
	if err != nil || w == nil {
		return
	}
	var pdf bytes.Buffer
	err = f.u.app.Print(f.rs.id, f.req, &pdf)
	if err == nil {
		_, err = w.Write(pdf.Bytes())
	}
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		storage.Delete(w.URI())
		f.rs.m.say("Not printed: "+err.Error(), toneDanger)
		return
	}
	f.rs.m.say("Saved "+w.URI().Name()+": open it to print", toneSuccess)
}
