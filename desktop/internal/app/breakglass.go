package app

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"haven/shared/client"
	"haven/shared/docid"
	"haven/shared/nhs"
	"haven/shared/record"
	"haven/shared/wire"
)

// The advice line fetches; it does not copy. Its computer holds no record
// until a clinician finds a resident in the region (through the relay) and
// opens the record for a call with a reason, which the relay records
// before it sends the record. What was opened stays here until the
// retention the relay set (72 hours) after it was last opened for a call,
// so a call-back works if the line goes down, and is then deleted.

// ErrNeedsReason is returned when a record may only be opened with a typed
// reason (break-glass): ask for one and call BreakGlass.
var ErrNeedsReason = errors.New("say why you are opening this record: it is outside this computer's care relationship, and the information-governance lead reviews every such access")

// ErrRegionOffline is returned by SearchRegion and BreakGlass without a
// connection to the relay.
var ErrRegionOffline = errors.New("the region is searched and records are opened through the relay, which this computer cannot reach now; records opened in the last three days are still here")

// ActionBreakGlass is the audit action the relay lists for IG review.
const ActionBreakGlass = wire.ActionBreakGlass

// auditReopenOffline is the action of a record opened again, with a
// reason, while the relay could not be reached: this computer still held
// it. Reported like any audit event.
const auditReopenOffline = "reopen-offline"

const nsOpened = "app-opened" // record ID → opened (JSON)

// adviceRetention is the relay's default retention, for demo computers
// that have no relay to say it.
const adviceRetention = 72 * time.Hour

// opened is a record the advice line opened, and until when it may keep
// it: the relay's grant, from the last opening for a call.
type opened struct {
	Timeline string    `json:"timeline"`
	Until    time.Time `json:"until"`
}

// AdviceLine reports whether this is an advice-line computer.
func (a *App) AdviceLine() bool { return a.dev.OrgKind == "advice-line" }

// careHome reports whether this computer belongs to a care home.
func (a *App) careHome() bool { return a.dev.OrgKind == "care-home" }

// NeedsReason reports whether opening this resident needs a typed reason:
// the advice line covers the whole region, so every record it opens is a
// break-glass access, justified by the call it is handling.
func (a *App) NeedsReason(id docid.ID) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.AdviceLine() && !a.glass[id]
}

// checkGlass refuses reads of a resident that need a reason first.
func (a *App) checkGlass(id docid.ID) error {
	if a.NeedsReason(id) {
		return ErrNeedsReason
	}
	return nil
}

// RegionMatch is a resident found in the region.
type RegionMatch struct {
	ID          docid.ID
	Name        string
	DateOfBirth string
	NHSNumber   string
	HomeName    string
	Status      string
	Held        bool // opened, and still on this computer
	// NotShared: the person withdrew consent to share their record beyond
	// their home; the relay will not open it for a call.
	NotShared bool
}

// CanSearchRegion reports whether the signed-in member of staff finds
// residents in the region and opens their records for calls: a clinician
// on an advice-line computer. The relay decides again on every search and
// opening.
func (a *App) CanSearchRegion() bool {
	return a.AdviceLine() && a.CurrentUser().Acts().MayBreakGlass()
}

// SearchRegion finds residents of every home by NHS number, or by family
// name with date of birth (as staff type dates: 2/4/1931, 1931-04-02).
func (a *App) SearchRegion(nhsNumber, familyName, dateOfBirth string) ([]RegionMatch, error) {
	if a.CurrentUser() == nil {
		return nil, ErrLockedScreen
	}
	q := wire.SearchQuery{ID: randomID("q-")}
	switch {
	case strings.TrimSpace(nhsNumber) != "":
		n, err := nhs.Parse(nhsNumber, a.nhsMode())
		if err != nil {
			return nil, &Problem{Message: "Check the NHS number.", Fields: map[string]string{"nhs": err.Error()}}
		}
		q.NHSNumber = n.Digits()
	default:
		p := &Problem{Message: "Search by NHS number, or by family name with date of birth.", Fields: map[string]string{}}
		if len(strings.TrimSpace(familyName)) < 2 {
			p.Fields["family"] = "needed without an NHS number"
		}
		dateOfBirth = NormaliseDate(dateOfBirth)
		if _, err := time.Parse(time.DateOnly, dateOfBirth); err != nil {
			p.Fields["dob"] = "needed without an NHS number, as a date such as 2/4/1931"
		}
		if len(p.Fields) > 0 {
			return nil, p
		}
		q.FamilyName, q.DateOfBirth = strings.TrimSpace(familyName), dateOfBirth
	}
	c := a.client
	if c == nil || !c.Status().Online {
		return nil, ErrRegionOffline
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	res, err := c.Search(ctx, q)
	if err != nil {
		return nil, a.relayProblem(err)
	}
	out := make([]RegionMatch, 0, len(res.Matches))
	for _, m := range res.Matches {
		id, err := docid.Parse(m.Record)
		if err != nil {
			continue
		}
		r := Row{GivenName: m.GivenName, FamilyName: m.FamilyName, PreferredName: m.PreferredName}
		_, held := a.openedRecord(id)
		out = append(out, RegionMatch{ID: id, Name: r.Name(), DateOfBirth: m.DateOfBirth, NHSNumber: m.NHSNumber,
			HomeName: m.HomeName, Status: m.Status, Held: held, NotShared: m.NotShared})
	}
	return out, nil
}

func (a *App) nhsMode() nhs.Mode {
	if a.dev.Demo {
		return nhs.Demo
	}
	return nhs.Live
}

// relayProblem words a refusal or failure of a request to the relay.
func (a *App) relayProblem(err error) error {
	var re *client.RefusedError
	switch {
	case errors.Is(err, client.ErrOffline), errors.Is(err, context.DeadlineExceeded):
		return ErrRegionOffline
	case !errors.As(err, &re):
		return err
	}
	switch re.Code {
	case wire.CodeNeedsReason:
		return &Problem{Message: record.ErrReason.Error(), Fields: map[string]string{"reason": "too short or too long"}}
	case wire.CodeNotPermitted:
		return &Problem{Message: "Only a certified clinician of the advice line can open records; ask your administrator."}
	case wire.CodeQuotaSearch:
		return &Problem{Message: "Too many searches from this computer in the last hour; try again in a few minutes."}
	case wire.CodeNotFound:
		return &Problem{Message: "The relay has no such record."}
	case wire.CodeNotShared:
		return &Problem{Message: "This person has withdrawn consent to share their record beyond their care home: ring the home for what you need."}
	}
	return &Problem{Message: "The relay refused the request (" + re.Code + ")."}
}

// BreakGlass opens a resident's record for a call, with the reason: the
// relay records the access (signed by the clinician's certificate) before
// it sends the record. Without a connection, a record still held here
// opens again, and the reason goes in this computer's audit log.
func (a *App) BreakGlass(id docid.ID, reason string) error {
	u := a.CurrentUser()
	if u == nil {
		return ErrLockedScreen
	}
	reason, err := record.CheckReason(reason)
	if err != nil {
		return &Problem{Message: "Give a reason a reviewer will understand, e.g. \"Call from Larch House about a fall\".", Fields: map[string]string{"reason": "10 to 300 characters"}}
	}
	if !u.Acts().MayBreakGlass() || u.signer.Cert == nil {
		return &Problem{Message: "Only a certified clinician can open a record from the region."}
	}
	c := a.client
	online := c != nil && c.Status().Online
	if !online {
		if _, held := a.openedRecord(id); !held {
			return ErrRegionOffline
		}
		a.audit.record(u, id, auditReopenOffline, reason)
		a.setGlass(id)
		return nil
	}
	claim := wire.AuditEvent{ID: randomID("ev-"), Time: a.opts.Now().UTC(), User: u.ID, Role: string(u.Acts()),
		Resident: id.String(), Action: wire.ActionBreakGlass, Detail: reason, Cert: u.signer.Cert.ID}
	claim.Sig = u.signer.Sign(claim.SigningBytes(a.dev.DeviceID))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	res, err := c.Open(ctx, wire.OpenRequest{ID: randomID("open-"), Claim: claim})
	if err != nil {
		return a.relayProblem(err)
	}
	o := opened{Timeline: res.Timeline, Until: a.opts.Now().Add(time.Duration(res.KeepSeconds) * time.Second)}
	b, _ := json.Marshal(o)
	if err := a.st.Put(context.Background(), nsOpened, id.String(), b); err != nil {
		return err
	}
	a.idx.refresh(id)
	if tl, err := docid.Parse(res.Timeline); err == nil {
		a.idx.refresh(tl)
	}
	a.setGlass(id)
	a.emit(Event{Kind: EventList})
	return nil
}

func (a *App) setGlass(id docid.ID) {
	a.mu.Lock()
	a.glass[id] = true
	a.mu.Unlock()
}

// openedRecord reports what the advice line may keep of a record.
func (a *App) openedRecord(id docid.ID) (opened, bool) {
	var o opened
	b, err := a.st.Get(nsOpened, id.String())
	if err != nil || json.Unmarshal(b, &o) != nil {
		return o, false
	}
	return o, a.opts.Now().Before(o.Until)
}

// purgeOpened deletes the records (and timelines) the advice line may no
// longer keep, and reports how many records went.
func (a *App) purgeOpened() int {
	if !a.AdviceLine() {
		return 0
	}
	now := a.opts.Now()
	var gone []docid.ID
	var timelines []docid.ID
	a.st.Scan(nsOpened, "", func(key string, val []byte) error {
		var o opened
		id, err := docid.Parse(key)
		if err != nil || json.Unmarshal(val, &o) != nil || now.Before(o.Until) {
			return nil
		}
		gone = append(gone, id)
		if tl, err := docid.Parse(o.Timeline); err == nil {
			timelines = append(timelines, tl)
		}
		return nil
	})
	ctx := context.Background()
	for _, id := range append(append([]docid.ID{}, gone...), timelines...) {
		if err := a.repo.Remove(ctx, id); err != nil {
			a.log.Error("delete a record past its retention", "doc", id.String(), "err", err)
		}
		a.st.Delete(ctx, nsKind, id.String())
	}
	for _, id := range gone {
		a.idx.remove(id)
		a.st.Delete(ctx, nsOpened, id.String())
		a.mu.Lock()
		delete(a.glass, id)
		a.mu.Unlock()
	}
	if len(gone) > 0 {
		a.log.Info("records past the advice line's retention deleted", "records", len(gone))
		a.emit(Event{Kind: EventList})
	}
	return len(gone)
}

// purgeLoop deletes what may no longer be kept, at start and every few
// minutes (a scan of a few keys), so that the copies go about when the
// relay stops serving them.
func (a *App) purgeLoop(ctx context.Context) {
	t := time.NewTicker(5 * time.Minute)
	defer t.Stop()
	for {
		a.purgeOpened()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
