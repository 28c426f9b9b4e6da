package ui

import (
	"io"
	"time"

	"haven/desktop/internal/app"
	"haven/shared/docid"
	"haven/shared/record"
	"haven/shared/wire"
)

// The application layer as the screens use it: *app.App provides it. The
// UI declares what it consumes, grouped by concern, so the boundary is
// visible in one place and nothing below it (storage, sync, validation) is
// reachable from a widget.
type (
	// session: who may use this computer, who is signed in, the idle lock
	// and the connection.
	session interface {
		Device() app.Device
		StaffList() []app.Staff
		Unlock(staffID, pin string) (*app.User, error)
		Lock()
		Locked() bool
		CurrentUser() *app.User
		Permissions() app.Permissions
		Touch()
		CheckIdle() bool
		Status() app.SyncStatus
		Subscribe(func(app.Event))
	}

	// lister: the resident list, the conflicts inbox and the homes held.
	lister interface {
		Residents(app.Filter) []app.Row
		ReviewsDue() []app.DueReview
		Conflicts() []app.Conflict
		Tampered() []app.Row
		Homes() []string
	}

	// reader: one resident's record, as views (each audited where the
	// design says so).
	reader interface {
		FrontSheet(docid.ID) (*app.FrontSheet, error)
		AsOf(docid.ID) (string, bool)
		CarePlan(docid.ID) ([]app.CarePlanItem, error)
		Wishes(docid.ID) (*app.WishesView, error)
		Contacts(docid.ID) ([]record.Contact, error)
		Notes(docid.ID) ([]app.NoteView, error)
		History(docid.ID) ([]app.HistoryItem, error)
		Print(docid.ID, app.PrintRequest, io.Writer) error
		ScoreTyped(docid.ID, app.ObservationsForm) app.NEWS2View
		ReviewDateChoices() []app.DateChoice
		Today() string
	}

	// region: the advice line finds residents of every home through the
	// relay and opens a record for a call with a reason (break-glass).
	region interface {
		AdviceLine() bool
		CanSearchRegion() bool
		SearchRegion(nhsNumber, familyName, dateOfBirth string) ([]app.RegionMatch, error)
		BreakGlass(id docid.ID, reason string) error
	}

	// reviewer: an information-governance lead reviews break-glass
	// accesses, through the relay.
	reviewer interface {
		CanReview() bool
		PendingReviews() ([]app.PendingAccess, error)
		ReviewAccess(seq uint64, note string) ([]app.PendingAccess, error)
	}

	// writer: every change, each answering Saved or a *app.Problem.
	writer interface {
		Admit(home string, f app.Admission) (docid.ID, app.Saved, error)
		Discharge(id docid.ID, status, date, placeOfDeath string) (app.Saved, error)
		SaveCarePlan(docid.ID, app.CarePlanForm) (app.Saved, error)
		MarkReviewed(id docid.ID, d record.Domain, nextDue string) (app.Saved, error)
		UpdateWishes(docid.ID, record.Wishes) (app.Saved, error)
		AddRespectReview(docid.ID, record.Review) (app.Saved, error)
		Decide(id docid.ID, k record.Kind, subject string, value any, reason string) (app.Saved, error)
		CanDecide(record.Kind) bool
		AddContact(docid.ID, record.Contact) (app.Saved, error)
		UpdateContact(docid.ID, record.Contact) (app.Saved, error)
		AddAlert(id docid.ID, text string) (app.Saved, error)
		ResolveAlert(id docid.ID, alertID string) (app.Saved, error)
		CorrectionOf(docid.ID) (app.Correction, error)
		CorrectIdentity(docid.ID, app.Correction) (app.Saved, error)
		TransferHomes() []wire.HomeName
		Transfer(id docid.ID, to, reason string) (app.Saved, error)
		AddNote(id docid.ID, text string) (app.Saved, error)
		RecordAdviceCall(docid.ID, app.AdviceCallForm) (app.Saved, error)
		MarkEnteredInError(id docid.ID, noteID, reason string) (app.Saved, error)
		CanMarkInError(app.NoteView) bool
	}

	// team: a manager adds, resets and removes the staff accounts on
	// this computer.
	team interface {
		AddStaff(name string, role record.Role, reg, pin string) (app.Staff, error)
		ResetPIN(staffID, pin string) (app.StaffChange, error)
		RemoveStaff(staffID string) (app.StaffChange, error)
		PendingLeavers() int
	}

	// handover: what changed in the home since a time; reports: the home
	// as a whole, month by month.
	handover interface {
		Handover(since time.Time) ([]app.HandoverResident, error)
		Now() time.Time
		Report(home string) (app.Report, error)
	}

	// services: the region's directory of services for the last phase
	// of life, held on every computer; who to call for a resident's home.
	services interface {
		Services(app.ServicesQuery) (app.ServiceList, error)
		WhoToCall(docid.ID) app.WhoToCall
		HomeArea() record.HomeArea
		CanEditServices() bool
		SaveService(record.Service) (app.Saved, error)
	}

	core interface {
		session
		team
		handover
		lister
		reader
		writer
		region
		reviewer
		services
	}
)

var _ core = (*app.App)(nil)
