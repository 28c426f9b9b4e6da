package ui

import (
	"fmt"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/layout"
	"fyne.io/fyne/v2/widget"

	"haven/desktop/internal/app"
)

// statusView is what the status bar says: each state in words as well as
// colour.
type statusView struct {
	Connection  string
	Tone        tone
	Waiting     string
	WaitingTone tone
	Last        string
	Problem     string
	Download    string // "" when no download is running
	Fraction    float64
}

// statusFor words a sync status; now decides whether the last exchange
// needs its date.
func statusFor(s app.SyncStatus, now time.Time) statusView {
	var v statusView
	switch {
	case s.Offline:
		v.Connection, v.Tone = "Offline: this computer has no relay (demo)", toneWarning
	case s.Online:
		v.Connection, v.Tone = "Online: connected to the relay", toneSuccess
	default:
		v.Connection, v.Tone = "Offline: working on this computer's copy", toneDanger
	}
	switch s.Pending {
	case 0:
		v.Waiting = "No changes waiting to be sent"
	case 1:
		v.Waiting, v.WaitingTone = "1 change waiting to be sent", toneWarning
	default:
		v.Waiting, v.WaitingTone = fmt.Sprintf("%d changes waiting to be sent", s.Pending), toneWarning
	}
	switch t := s.LastExchange.Local(); {
	case s.LastExchange.IsZero():
		v.Last = "No exchange with the relay yet"
	case t.Format("2006-01-02") == now.Local().Format("2006-01-02"):
		v.Last = "Last exchange " + t.Format("15:04")
	default:
		v.Last = "Last exchange " + t.Format("2 Jan 15:04")
	}
	if !s.Online && !s.Offline {
		v.Problem = s.Problem
	}
	if d := s.Download; d.Active && d.Total > 0 {
		v.Download = fmt.Sprintf("Downloading the home's records: %d of %d", d.Done, d.Total)
		v.Fraction = float64(d.Done) / float64(d.Total)
	}
	return v
}

// statusBar is always at the bottom of the signed-in window.
type statusBar struct {
	u          *UI
	dot        *canvas.Circle
	connection *widget.Label
	waiting    *widget.Label
	last       *widget.Label
	problem    *widget.Label
	download   *widget.Label
	progress   *widget.ProgressBar
	textSize   *widget.Select // the computer's text size (theme.go)
	view       statusView
}

func newStatusBar(u *UI) *statusBar { return &statusBar{u: u} }

func (b *statusBar) build() fyne.CanvasObject {
	b.dot = canvas.NewCircle(toneNeutral.colour())
	b.connection = text("", toneNeutral, true)
	b.waiting = text("", toneNeutral, false)
	b.last = text("", toneNeutral, false)
	b.problem = text("", toneNeutral, false)
	b.problem.Importance = widget.LowImportance
	b.problem.Truncation = fyne.TextTruncateEllipsis
	b.download = text("", toneInfo, false)
	b.progress = widget.NewProgressBar()
	b.download.Hide()
	b.progress.Hide()
	dot := container.New(layout.NewCenterLayout(), container.NewGridWrap(fyne.NewSize(14, 14), b.dot))
	left := container.NewHBox(dot, b.connection, widget.NewSeparator(), b.waiting, widget.NewSeparator(), b.last)
	var labels []string
	for _, s := range textSizes {
		labels = append(labels, s.label)
	}
	b.textSize = widget.NewSelect(labels, nil)
	b.textSize.SetSelected(b.u.fa.Preferences().StringWithFallback(prefTextSize, textSizes[0].label))
	b.textSize.OnChanged = func(l string) { b.u.touch(); b.u.setTextSize(l) }
	right := container.NewHBox(b.download, fixedWidth(200, b.progress), text("Text size", toneNeutral, false), b.textSize)
	return card(toneNeutral, container.NewBorder(nil, nil, left, right, b.problem))
}

func (b *statusBar) refresh() {
	v := statusFor(b.u.app.Status(), time.Now())
	b.view = v
	b.dot.FillColor = v.Tone.colour()
	b.dot.Refresh()
	setLabel(b.connection, v.Connection, v.Tone)
	setLabel(b.waiting, v.Waiting, v.WaitingTone)
	b.last.SetText(v.Last)
	b.problem.SetText(v.Problem)
	if v.Download == "" {
		b.download.Hide()
		b.progress.Hide()
		return
	}
	b.download.SetText(v.Download)
	b.progress.SetValue(v.Fraction)
	b.download.Show()
	b.progress.Show()
}
