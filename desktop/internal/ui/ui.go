// Package ui is Haven's desktop window: a thin Fyne layer over package app.
// Each screen is a small struct in its own file with a build method that
// makes its widgets and onX handlers that make one call into the
// application layer and show what comes back. Nothing here validates,
// stores or talks to the network; the words and colours a screen shows are
// computed by plain functions (rowFor, statusFor, reviewFor, news2For…)
// that the tests call directly.
//
// Threading: Fyne widgets are touched only on the UI thread. Application
// events arrive on whatever goroutine caused them and are handed over with
// fyne.Do; slow work (unlocking, which derives a key from the PIN on
// purpose slowly, and whatever talks to the relay: enrolment, searching
// the region, opening a record for a call, IG review) runs in a goroutine
// started by background, whose result comes back through fyne.Do.
package ui

import (
	"context"
	"image/color"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/driver/desktop"
	"fyne.io/fyne/v2/widget"

	"haven/desktop/internal/app"
)

// Options configure the window.
type Options struct {
	Logger *slog.Logger
	// Enroll sets this computer up from the first-run form and opens its
	// application layer. It is called off the UI thread.
	Enroll func(ctx context.Context, req app.EnrollRequest) (*app.App, error)
	// Relay and Code fill in the enrolment form (from the command line).
	Relay, Code string
	// OpenFirst opens the first resident's front sheet once the list has rows.
	OpenFirst bool
	// Show opens a view once the list has rows, instead: "handover" or
	// "staff" (demos and screenshots).
	Show string
	// OnReady runs once, on the UI thread, when the first view is populated:
	// the list has rows and, with OpenFirst, the front sheet is showing.
	OnReady func()
	// NoticeFor is how long a "Saved" message stays; 0 means 8 seconds,
	// negative means until the next message (tests).
	NoticeFor time.Duration
	// IdleCheck is how often the idle lock is checked; 0 means every 5
	// seconds, negative means never (tests call checkIdle themselves).
	IdleCheck time.Duration

	// results and events run f on the UI thread: background work's
	// result, and an application event; nil means fyne.Do. Fyne's test
	// driver runs fyne.Do's f at once on the calling goroutine, so tests
	// queue results (and, with a live relay, events) and run the queue on
	// the test's goroutine, where they use the widgets too.
	results, events func(f func())
}

// UI is the desktop window and whichever screen it shows.
type UI struct {
	fa     fyne.App
	win    fyne.Window
	app    core     // nil until this computer is enrolled
	opened *app.App // the same, for App (main closes it)
	opts   Options
	log    *slog.Logger

	root    *fyne.Container // the activity catcher under the current screen
	enrol   *enrolScreen
	unlock  *unlockScreen
	main    *mainScreen
	dialogs []dialog.Dialog

	readyDone   bool
	openedFirst bool

	closed   atomic.Bool    // set by Close: events no longer reach the widgets
	tasks    sync.WaitGroup // background work in flight (tests wait on it)
	stop     chan struct{}  // closed by Close: ends the idle timer
	stopOnce sync.Once
}

// New makes the window for a (nil on a computer not yet enrolled: the
// enrolment screen shows first). Call Window().ShowAndRun, then Close.
func New(fa fyne.App, a *app.App, opts Options) *UI {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	fa.Settings().SetTheme(newTheme(textScale(fa)))
	if opts.results == nil {
		opts.results = fyne.Do
	}
	if opts.events == nil {
		opts.events = fyne.Do
	}
	u := &UI{fa: fa, opts: opts, log: opts.Logger, stop: make(chan struct{})}
	u.win = fa.NewWindow("Haven")
	u.win.Resize(fyne.NewSize(1280, 800))
	u.root = container.NewStack(newActivity(u), widget.NewLabel(""))
	u.win.SetContent(u.root)
	u.hookCanvas()
	u.win.SetOnClosed(u.Close)
	// Sync keeps reporting while the data folder closes after the window;
	// from then on there is no UI thread to hand events to.
	fa.Lifecycle().SetOnStopped(u.Close)
	if a == nil {
		u.showEnrol()
	} else {
		u.attach(a)
	}
	return u
}

// Window is the main window.
func (u *UI) Window() fyne.Window { return u.win }

// App is the application layer the window uses: the one given to New, or
// the one the enrolment screen opened (nil before enrolment). Close it
// after the window.
func (u *UI) App() *app.App { return u.opened }

// Close stops the idle timer. It does not close the application layer.
func (u *UI) Close() {
	u.closed.Store(true)
	u.stopOnce.Do(func() { close(u.stop) })
}

// attach starts using an opened application layer.
func (u *UI) attach(a *app.App) {
	u.app, u.opened = a, a
	d := a.Device()
	title := "Haven"
	if d.OrgName != "" {
		title += " · " + d.OrgName
	}
	u.win.SetTitle(title)
	a.Subscribe(func(e app.Event) {
		if !u.closed.Load() {
			u.opts.events(func() { u.onEvent(e) })
		}
	})
	if every := u.opts.IdleCheck; every >= 0 {
		if every == 0 {
			every = 5 * time.Second
		}
		go u.idleTimer(every)
	}
	if a.Locked() {
		u.showUnlock()
	} else {
		u.showMain()
	}
}

// idleTimer checks the idle lock until Close.
func (u *UI) idleTimer(every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-u.stop:
			return
		case <-t.C:
			u.checkIdle()
		}
	}
}

// checkIdle locks the screen after the home's idle time; the lock arrives
// as EventLocked.
func (u *UI) checkIdle() {
	if u.app != nil {
		u.app.CheckIdle()
	}
}

// touch records activity, postponing the idle lock.
func (u *UI) touch() {
	if u.app != nil {
		u.app.Touch()
	}
}

// onEvent runs on the UI thread for each application event.
func (u *UI) onEvent(e app.Event) {
	if e.Kind == app.EventLocked {
		u.showUnlock()
		return
	}
	if u.main == nil {
		return
	}
	switch e.Kind {
	case app.EventList:
		u.main.listChanged()
	case app.EventResident:
		u.main.residentChanged(e.Doc)
	case app.EventStatus, app.EventDownload:
		u.main.statusChanged()
	}
	u.main.status.refresh()
}

// setScreen replaces what the window shows, closing any dialog first so
// nothing of a record stays on screen behind the lock.
func (u *UI) setScreen(o fyne.CanvasObject) {
	for _, d := range append([]dialog.Dialog(nil), u.dialogs...) {
		d.Hide()
	}
	u.dialogs = nil
	u.root.Objects[1] = o
	u.root.Refresh()
}

func (u *UI) showEnrol() {
	u.main, u.unlock = nil, nil
	u.enrol = newEnrolScreen(u)
	u.setScreen(u.enrol.build())
}

func (u *UI) showUnlock() {
	u.main, u.enrol = nil, nil
	u.unlock = newUnlockScreen(u)
	u.setScreen(u.unlock.build())
	u.win.Canvas().Focus(u.unlock.pin)
}

func (u *UI) showMain() {
	u.unlock, u.enrol = nil, nil
	u.main = newMainScreen(u)
	u.setScreen(u.main.build())
	u.main.start()
}

// ready tells Options.OnReady, once, that the first view is populated.
func (u *UI) ready() {
	if u.readyDone || u.opts.OnReady == nil {
		return
	}
	u.readyDone = true
	u.opts.OnReady()
}

// background runs work off the UI thread and then its result on it.
func (u *UI) background(work func() (then func())) {
	u.tasks.Add(1)
	go func() {
		defer u.tasks.Done()
		then := work()
		u.opts.results(then)
	}()
}

// busy runs work off the UI thread for a button, which meanwhile is
// disabled and says what is under way (doing); a button already busy
// ignores another press (or Enter). The button is itself again before
// work's result runs.
func (u *UI) busy(b *widget.Button, doing string, work func() (then func())) {
	if b.Disabled() {
		return
	}
	idle := b.Text
	b.Disable()
	b.SetText(doing)
	u.background(func() func() {
		then := work()
		return func() {
			b.Enable()
			b.SetText(idle)
			then()
		}
	})
}

// showDialog shows a modal form; setScreen closes it on lock.
func (u *UI) showDialog(title string, content fyne.CanvasObject, size fyne.Size) dialog.Dialog {
	d := dialog.NewCustomWithoutButtons(title, content, u.win)
	d.Resize(size)
	u.dialogs = append(u.dialogs, d)
	d.SetOnClosed(func() {
		for i, x := range u.dialogs {
			if x == d {
				u.dialogs = append(u.dialogs[:i], u.dialogs[i+1:]...)
				break
			}
		}
	})
	d.Show()
	return d
}

// hookCanvas counts keys pressed outside any entry as activity (entries
// count their own typing: see UI.entry).
func (u *UI) hookCanvas() {
	c := u.win.Canvas()
	c.SetOnTypedKey(func(*fyne.KeyEvent) { u.touch() })
	c.SetOnTypedRune(func(rune) { u.touch() })
	if dc, ok := c.(desktop.Canvas); ok {
		dc.SetOnKeyDown(func(*fyne.KeyEvent) { u.touch() })
	}
	for _, k := range shortcuts {
		c.AddShortcut(&desktop.CustomShortcut{KeyName: k.key, Modifier: fyne.KeyModifierShortcutDefault}, func(fyne.Shortcut) {
			u.touch()
			k.do(u)
		})
	}
}

// shortcuts are the keys staff use without the mouse, with Ctrl (⌘ on a
// Mac): find a resident, lock the screen, and the resident's next tab.
var shortcuts = []struct {
	key fyne.KeyName
	do  func(u *UI)
}{
	{fyne.KeyF, func(u *UI) {
		if u.main != nil && u.main.list.search != nil {
			u.win.Canvas().Focus(u.main.list.search)
		}
	}},
	{fyne.KeyL, func(u *UI) {
		if u.main != nil {
			u.app.Lock()
		}
	}},
	{fyne.KeyPageDown, func(u *UI) {
		if u.main != nil && u.main.resident != nil {
			u.main.resident.nextTab()
		}
	}},
}

// activity lies under every screen and counts the pointer moving or
// tapping over anything that is not itself interactive as activity. Fyne
// has no window-wide pointer hook; buttons, lists and entries count their
// own use (UI.button, UI.entry…).
type activity struct {
	widget.BaseWidget
	u *UI
}

func newActivity(u *UI) *activity {
	a := &activity{u: u}
	a.ExtendBaseWidget(a)
	return a
}

func (a *activity) CreateRenderer() fyne.WidgetRenderer {
	return widget.NewSimpleRenderer(canvas.NewRectangle(color.Transparent))
}

func (a *activity) MouseIn(*desktop.MouseEvent)    { a.u.touch() }
func (a *activity) MouseMoved(*desktop.MouseEvent) { a.u.touch() }
func (a *activity) MouseOut()                      {}
func (a *activity) Tapped(*fyne.PointEvent)        { a.u.touch() }
