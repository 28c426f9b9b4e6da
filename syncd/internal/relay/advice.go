package relay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"haven/shared/cert"
	"haven/shared/nhs"
	"haven/shared/record"
	"haven/shared/store"
	"haven/shared/wire"
	"haven/syncd/internal/orgs"
	"haven/syncd/internal/worker"
)

// The advice line fetches; it does not copy. Its devices may see every
// home, so they hold nothing by default: a clinician searches the region
// through the relay (by NHS number, or family name with date of birth),
// and opens one record for a call with a typed reason. The relay records
// the access, as a break-glass event signed by the clinician's
// certificate, durably, before it sends a byte of the record; the grant
// then lets the device hold the record and its timeline until
// Limits.AdviceRetention after it was last opened for a call, so a
// call-back still works if the line goes down. Past that, the relay treats
// them as outside the device's scope, and the desktop deletes its copies.
//
// An information-governance lead, signed in on a desktop of their
// organisation with a certificate for the role, lists the accesses
// awaiting review and records reviews through haven-review.

const nsOpened = "relay-opened" // device "/" document → grant (JSON)

// grant is one document an advice-line device may hold, until Until.
type grant struct {
	Until time.Time `json:"until"`
}

// grants are the advice-line devices' grants, loaded per device on first
// use and kept in step with the store.
type grants struct {
	mu    sync.Mutex
	byDev map[string]map[string]grant
}

func (s *Server) grantsOf(dev string) map[string]grant {
	g := &s.grants
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.byDev == nil {
		g.byDev = map[string]map[string]grant{}
	}
	m, ok := g.byDev[dev]
	if !ok {
		m = map[string]grant{}
		err := s.st.Scan(nsOpened, dev+"/", func(key string, val []byte) error {
			var gr grant
			if json.Unmarshal(val, &gr) == nil {
				m[strings.TrimPrefix(key, dev+"/")] = gr
			}
			return nil
		})
		if err != nil {
			s.log.Error("read advice-line grants", "device", dev, "err", err)
			return nil // nothing held; read again next time
		}
		g.byDev[dev] = m
	}
	return m
}

// granted reports whether an advice-line device may hold doc now. Sync
// traffic does not move a grant on: a desktop syncs what it holds whether
// or not anyone looks at it. Each opening for a call, with its reason,
// does. A region's document is granted to every device (region.go).
func (s *Server) granted(dev, doc string) bool {
	if s.owner(doc) == record.Region {
		return true
	}
	m := s.grantsOf(dev)
	s.grants.mu.Lock()
	defer s.grants.mu.Unlock()
	gr, ok := m[doc]
	return ok && time.Now().Before(gr.Until)
}

// grantedDocs lists the documents an advice-line device may hold now.
func (s *Server) grantedDocs(dev string) []string {
	m := s.grantsOf(dev)
	now := time.Now()
	s.grants.mu.Lock()
	defer s.grants.mu.Unlock()
	var out []string
	for doc, gr := range m {
		if now.Before(gr.Until) {
			out = append(out, doc)
		}
	}
	return out
}

// describer is how the relay learns what a stored document holds: a
// worker reads it, since the relay process never loads a document (one
// that crashes Automerge costs a worker, not the relay).
type describer interface {
	Describe(ctx context.Context, doc string) (worker.Description, error)
}

// reply sends a haven request's answer.
func (c *conn) reply(t wire.Type, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		c.s.log.Error("encode answer", "type", t, "err", err)
		return
	}
	c.send(wire.Message{Type: t, Data: b})
}

// searchDirs reads every home's directory, through the workers.
func (s *Server) searchDirs(ctx context.Context, match func(home orgs.Org, e record.DirectoryEntry) bool) ([]wire.SearchMatch, error) {
	d, ok := s.work.(describer)
	if !ok {
		return nil, errors.New("the workers cannot read documents")
	}
	list, err := s.orgs.Orgs()
	if err != nil {
		return nil, err
	}
	var out []wire.SearchMatch
	for _, o := range list {
		if o.Directory == "" {
			continue
		}
		desc, err := d.Describe(ctx, o.Directory)
		if err != nil {
			s.log.Warn("read a home's directory for a search", "org", o.ID, "err", err)
			continue
		}
		for _, e := range desc.Directory {
			if len(out) < wire.MaxSearchMatches && match(o, e) && s.owner(e.ID) == o.ID {
				out = append(out, wire.SearchMatch{Record: e.ID, Home: o.ID, HomeName: o.Name, GivenName: e.GivenName,
					FamilyName: e.FamilyName, PreferredName: e.PreferredName, DateOfBirth: e.DateOfBirth, NHSNumber: e.NHSNumber, Status: e.Status,
					NotShared: s.isPrivate(e.ID)})
			}
		}
	}
	return out, nil
}

// search answers an advice-line device's haven-search.
func (c *conn) search(m wire.Message) {
	s := c.s
	var q wire.SearchQuery
	if err := json.Unmarshal(m.Data, &q); err != nil {
		c.reply(wire.TypeHavenSearch, wire.SearchResult{Code: wire.CodeBadRequest})
		return
	}
	res := wire.SearchResult{ID: clip(q.ID)}
	num, nhsErr := nhs.Parse(q.NHSNumber, nhs.Demo)
	byNHS := nhsErr == nil
	family := strings.TrimSpace(q.FamilyName)
	_, dobErr := time.Parse(time.DateOnly, q.DateOfBirth)
	switch {
	case !c.sc().AdviceLine():
		res.Code = wire.CodeNotPermitted
	case !byNHS && (len(family) < 2 || dobErr != nil):
		res.Code = wire.CodeBadRequest
	case !s.allowSearch(c):
		s.metrics.refused.WithLabelValues("quota-search").Inc()
		res.Code = wire.CodeQuotaSearch
	}
	if res.Code != "" {
		c.reply(wire.TypeHavenSearch, res)
		return
	}
	matches, err := s.searchDirs(c.ctx, func(_ orgs.Org, e record.DirectoryEntry) bool {
		if byNHS {
			n, err := nhs.Parse(e.NHSNumber, nhs.Demo)
			return err == nil && n == num
		}
		return strings.EqualFold(strings.TrimSpace(e.FamilyName), family) && e.DateOfBirth == q.DateOfBirth
	})
	if err != nil {
		s.log.Error("search", "device", c.dev.ID, "err", err)
		res.Code = wire.CodeInternal
		c.reply(wire.TypeHavenSearch, res)
		return
	}
	// Who searched, and how: never what for (a name or number is the
	// person's).
	how := "name-and-birth-date"
	if byNHS {
		how = "nhs-number"
	}
	if _, err := s.orgs.Audit(c.ctx, orgs.AuditEvent{Device: c.dev.ID, Org: c.dev.Org, Action: wire.ActionSearch,
		Detail: fmt.Sprintf("%s, %d found", how, len(matches)), ByRelay: true}); err != nil {
		s.log.Error("audit a search", "device", c.dev.ID, "err", err)
		res.Code = wire.CodeInternal
		c.reply(wire.TypeHavenSearch, res)
		return
	}
	res.Matches = matches
	if res.Matches == nil {
		res.Matches = []wire.SearchMatch{}
	}
	c.reply(wire.TypeHavenSearch, res)
}

// staffClaim checks a signed claim made on this device for a request:
// fresh (signed within clockSlack of now, so an old one cannot be sent
// again), never sent before, for action, by a certified member of staff
// of the device's organisation whose role may.
func (c *conn) staffClaim(claim wire.AuditEvent, action string, may func(record.Role) bool) (cert.Certificate, string) {
	s := c.s
	now := time.Now()
	if claim.Action != action || claim.ID == "" || claim.Time.Before(now.Add(-clockSlack)) || claim.Time.After(now.Add(clockSlack)) {
		return cert.Certificate{}, wire.CodeBadRequest
	}
	trust, _, err := s.orgs.Trust()
	if err != nil {
		return cert.Certificate{}, wire.CodeInternal
	}
	crt, err := s.orgs.StaffSigned(trust, c.dev, claim.Cert, claim.SigningBytes(c.dev.ID), claim.Sig, claim.Time)
	if err != nil || !may(record.Role(crt.Role)) {
		return cert.Certificate{}, wire.CodeNotPermitted
	}
	if _, err := s.st.Get(nsAuditIDs, c.dev.ID+"/"+clip(claim.ID)); err == nil {
		return cert.Certificate{}, wire.CodeBadRequest // replayed
	}
	return crt, ""
}

// open answers an advice-line device's haven-open: check, record, grant,
// answer, then send the record and its timeline.
func (c *conn) open(m wire.Message) {
	s := c.s
	var req wire.OpenRequest
	if err := json.Unmarshal(m.Data, &req); err != nil {
		c.reply(wire.TypeHavenOpen, wire.OpenResult{Code: wire.CodeBadRequest})
		return
	}
	res := wire.OpenResult{ID: clip(req.ID), Record: req.Claim.Resident}
	fail := func(code string) {
		s.metrics.refused.WithLabelValues("open-" + code).Inc()
		s.log.Warn("record opening refused", "device", c.dev.ID, "doc", clip(req.Claim.Resident), "code", code)
		res.Code = code
		c.reply(wire.TypeHavenOpen, res)
	}
	if !c.sc().AdviceLine() {
		fail(wire.CodeNotPermitted)
		return
	}
	reason, err := record.CheckReason(req.Claim.Detail)
	if err != nil || reason != req.Claim.Detail {
		fail(wire.CodeNeedsReason)
		return
	}
	crt, code := c.staffClaim(req.Claim, wire.ActionBreakGlass, record.Role.MayBreakGlass)
	if code != "" {
		fail(code)
		return
	}
	if !s.allowSearch(c) {
		fail(wire.CodeQuotaSearch)
		return
	}
	doc := req.Claim.Resident
	owner := s.owner(doc)
	d, ok := s.work.(describer)
	if owner == "" || !ok {
		fail(wire.CodeNotFound)
		return
	}
	desc, err := d.Describe(c.ctx, doc)
	if err != nil || desc.Type != "resident" || desc.Home != owner || s.owner(desc.Timeline) != owner {
		fail(wire.CodeNotFound)
		return
	}
	if s.isPrivate(doc) {
		// Said plainly: the clinician knows there is a record and why it
		// is not sent, and rings the home.
		fail(wire.CodeNotShared)
		return
	}
	now := time.Now().UTC()
	until := now.Add(s.cfg.Limits.AdviceRetention)
	gb, _ := json.Marshal(grant{Until: until})
	e := orgs.AuditEvent{Time: req.Claim.Time, Received: now, Device: c.dev.ID, Org: c.dev.Org, Owner: owner,
		User: crt.Staff, Name: crt.Name, Role: crt.Role, Cert: crt.ID, Resident: doc, Action: wire.ActionBreakGlass,
		Detail: reason, EventID: clip(req.Claim.ID), ByRelay: true}
	// The access is on record, durably, before the grant that lets a byte
	// of the record go: one write holds both.
	if _, err := s.orgs.AuditAll(c.ctx, []orgs.AuditEvent{e}, []store.Change{
		{NS: nsAuditIDs, Key: c.dev.ID + "/" + e.EventID, Val: []byte{}},
		{NS: nsOpened, Key: c.dev.ID + "/" + doc, Val: gb},
		{NS: nsOpened, Key: c.dev.ID + "/" + desc.Timeline, Val: gb},
	}); err != nil {
		s.log.Error("record a break-glass access", "device", c.dev.ID, "doc", doc, "err", err)
		fail(wire.CodeInternal)
		return
	}
	m2 := s.grantsOf(c.dev.ID)
	s.grants.mu.Lock()
	if m2 != nil {
		m2[doc] = grant{Until: until}
		m2[desc.Timeline] = grant{Until: until}
	}
	s.grants.mu.Unlock()
	s.log.Info("break-glass access granted", "device", c.dev.ID, "doc", doc, "cert", crt.ID)
	res.Timeline, res.Until, res.KeepSeconds = desc.Timeline, until, int64(s.cfg.Limits.AdviceRetention/time.Second)
	c.reply(wire.TypeHavenOpen, res)
	for _, id := range []string{doc, desc.Timeline} {
		if err := c.fetch(c.ctx, id); err != nil {
			return
		}
	}
}

// review answers an IG lead's haven-review: the break-glass accesses to
// their organisation's residents, or by their organisation's staff, still
// awaiting review, after recording the review asked for.
func (c *conn) review(m wire.Message) {
	s := c.s
	var req wire.ReviewRequest
	if err := json.Unmarshal(m.Data, &req); err != nil {
		c.reply(wire.TypeHavenReview, wire.ReviewList{Code: wire.CodeBadRequest})
		return
	}
	res := wire.ReviewList{ID: clip(req.ID), Pending: []wire.PendingAccess{}}
	action := wire.ActionReviewList
	if req.Seq != 0 {
		action = wire.ActionReview
	}
	crt, code := c.staffClaim(req.Claim, action, record.Role.MayReview)
	if code != "" {
		res.Code = code
		c.reply(wire.TypeHavenReview, res)
		return
	}
	if err := s.st.Put(c.ctx, nsAuditIDs, c.dev.ID+"/"+clip(req.Claim.ID), []byte{}); err != nil {
		res.Code = wire.CodeInternal
		c.reply(wire.TypeHavenReview, res)
		return
	}
	org := c.dev.Org
	if req.Seq != 0 {
		err := s.orgs.ReviewBreakGlassFor(c.ctx, org, req.Seq, crt.Name+" ("+crt.Staff+", "+crt.ID+")", req.Claim.Detail)
		switch {
		case errors.Is(err, orgs.ErrNotFound):
			res.Code = wire.CodeNotFound
		case err != nil:
			s.log.Error("record a review", "device", c.dev.ID, "seq", req.Seq, "err", err)
			res.Code = wire.CodeInternal
		}
	}
	list, err := s.orgs.Unreviewed(org)
	if err != nil {
		s.log.Error("list accesses awaiting review", "device", c.dev.ID, "err", err)
		res.Code = wire.CodeInternal
		c.reply(wire.TypeHavenReview, res)
		return
	}
	for _, p := range list {
		e := p.Event.Printable()
		pa := wire.PendingAccess{Seq: p.Seq, Received: e.Received, Device: e.Device, Staff: e.Name, Role: e.Role,
			Resident: e.Resident, Home: e.Owner, Reason: e.Detail}
		if dev, err := s.orgs.Device(p.Event.Device); err == nil {
			pa.Device = orgs.Printable(dev.Name)
			if o, err := s.orgs.Org(dev.Org); err == nil {
				pa.Device += ", " + orgs.Printable(o.Name)
			}
		}
		if o, err := s.orgs.Org(p.Event.Owner); err == nil {
			pa.Home = orgs.Printable(o.Name)
		}
		res.Pending = append(res.Pending, pa)
	}
	c.reply(wire.TypeHavenReview, res)
}
