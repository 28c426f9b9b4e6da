package orgs

import (
	"fmt"
	"slices"

	"haven/shared/record"
)

// Scope is what one device may see, as of when Scope computed it: the relay computes it once
// per connection, so a change (SetHubHomes, a revocation) applies from the next connection.
// The zero Scope allows nothing.
type Scope struct {
	// Device and Org are the device and organisation the scope belongs to.
	Device Device
	Org    Org

	all  bool            // advice line: every organisation
	orgs map[string]bool // otherwise the organisations whose documents it may see
}

// Scope returns d's scope, reading its organisation afresh:
//   - a care home's device: the home's own documents;
//   - a GP hub's device: the hub's own documents and those of every home it covers now;
//   - an advice line's device: every organisation's documents.
//
// A revoked device gets ErrRevoked (a Device value may be older than its revocation, so the
// record is read again).
func (r *Registry) Scope(d Device) (Scope, error) {
	rec, err := r.deviceRecord(d.ID)
	if err != nil {
		return Scope{}, err
	}
	if !rec.Revoked.IsZero() {
		return Scope{}, ErrRevoked
	}
	org, err := r.Org(rec.Org)
	if err != nil {
		return Scope{}, fmt.Errorf("device %s: %w", rec.ID, err)
	}
	s := Scope{Device: d, Org: org}
	switch org.Kind {
	case KindAdviceLine:
		s.all = true
	case KindHome:
		s.orgs = map[string]bool{org.ID: true}
	case KindHub:
		s.orgs = map[string]bool{org.ID: true}
		for _, h := range org.Homes {
			s.orgs[h] = true
		}
	default:
		return Scope{}, fmt.Errorf("organisation %s has unknown kind %q", org.ID, org.Kind)
	}
	return s, nil
}

// Allows reports whether the device may see a document owned by organisation ownerOrgID. A
// document with no known owner (empty ID) is nobody's: Allows refuses it, even to the advice
// line, so a document is never served before the relay knows whose it is. A region's
// document (owner record.Region: the directory of services) is every device's.
func (s Scope) Allows(ownerOrgID string) bool {
	if ownerOrgID == "" || s.orgs == nil && !s.all {
		return false
	}
	return s.all || s.orgs[ownerOrgID] || ownerOrgID == record.Region
}

// WritesRegion reports whether the device may change a region's documents: GP hubs' and the
// advice line's devices keep the directory of services, care homes' read it. The relay
// refuses a change from any other (record.RuleReadOnly), whatever the device's own code does.
func (s Scope) WritesRegion() bool { return s.Org.Kind == KindHub || s.Org.Kind == KindAdviceLine }

// AdviceLine reports whether the scope is an advice line's: everything, with each first
// opening of a record audited (see AuditFirstAccess).
func (s Scope) AdviceLine() bool { return s.all }

// OrgIDs returns the organisations in scope, sorted, or nil for an advice line (which sees
// every organisation, including ones created later).
func (s Scope) OrgIDs() []string {
	if s.all {
		return nil
	}
	ids := make([]string, 0, len(s.orgs))
	for id := range s.orgs {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}
