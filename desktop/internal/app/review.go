package app

import (
	"context"
	"strings"
	"time"

	"haven/shared/wire"
)

// An information-governance lead reviews break-glass accesses: records
// opened outside a care relationship (the advice line's, with the reason
// typed for the call). The relay holds them and the reviews; this computer
// asks with the lead's signature, so only a certified IG lead of its
// organisation sees and reviews them.

// PendingAccess is a break-glass access awaiting review.
type PendingAccess struct {
	Seq      uint64
	When     time.Time // when the relay recorded it
	Staff    string    // the clinician, from their certificate
	Role     string
	Device   string // the computer and its organisation
	Resident string // the record's document ID
	Home     string // the resident's home
	Reason   string
}

// CanReview reports whether the signed-in member of staff reviews
// break-glass accesses: a certified IG lead.
func (a *App) CanReview() bool {
	u := a.CurrentUser()
	return u != nil && u.Acts().MayReview() && u.signer.Cert != nil
}

// PendingReviews lists the break-glass accesses awaiting review.
func (a *App) PendingReviews() ([]PendingAccess, error) {
	return a.reviewRequest(0, "")
}

// ReviewAccess records the signed-in IG lead's review of one access, with
// a note, and returns what still awaits review.
func (a *App) ReviewAccess(seq uint64, note string) ([]PendingAccess, error) {
	note = strings.TrimSpace(note)
	if note == "" {
		return nil, &Problem{Message: "Say what you found, e.g. \"call logged on the advice line at 02:14\".", Fields: map[string]string{"note": "needed"}}
	}
	return a.reviewRequest(seq, note)
}

func (a *App) reviewRequest(seq uint64, note string) ([]PendingAccess, error) {
	u := a.CurrentUser()
	if u == nil {
		return nil, ErrLockedScreen
	}
	if !a.CanReview() {
		return nil, &Problem{Message: "Only a certified information-governance lead reviews break-glass accesses."}
	}
	c := a.client
	if c == nil || !c.Status().Online {
		return nil, ErrRegionOffline
	}
	action := wire.ActionReviewList
	if seq != 0 {
		action = wire.ActionReview
	}
	claim := wire.AuditEvent{ID: randomID("ev-"), Time: a.opts.Now().UTC(), User: u.ID, Role: string(u.Acts()),
		Action: action, Detail: note, Cert: u.signer.Cert.ID}
	claim.Sig = u.signer.Sign(claim.SigningBytes(a.dev.DeviceID))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	res, err := c.Review(ctx, wire.ReviewRequest{ID: randomID("rev-"), Seq: seq, Claim: claim})
	if err != nil {
		return nil, a.relayProblem(err)
	}
	out := make([]PendingAccess, len(res.Pending))
	for i, p := range res.Pending {
		out[i] = PendingAccess{Seq: p.Seq, When: p.Received, Staff: p.Staff, Role: p.Role, Device: p.Device,
			Resident: p.Resident, Home: p.Home, Reason: p.Reason}
	}
	return out, nil
}
