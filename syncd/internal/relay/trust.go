package relay

import (
	"encoding/json"
	"errors"

	"haven/shared/cert"
	"haven/shared/wire"
	"haven/syncd/internal/orgs"
)

// The relay's trust is the organisation key and every revocation it has
// issued. It is read from the registry at start and again whenever a
// certificate is revoked (TrustChanged); its version, the number of
// revocations, goes with every work item, so a worker checks each change
// against the revocations the relay knows at that moment.

// loadTrust reads the trust from the registry. Caller need not hold s.mu.
func (s *Server) loadTrust() error {
	_, revs, err := s.orgs.Trust()
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.revocations = revs
	s.mu.Unlock()
	return nil
}

// trustVersion is the version workers compare with their own.
func (s *Server) trustVersion() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return uint64(len(s.revocations)) + 1
}

// TrustChanged is the registry's OnTrustChange: a certificate was revoked.
// Workers fetch the new trust with their next item; every connected device
// is told now.
func (s *Server) TrustChanged() {
	if err := s.loadTrust(); err != nil {
		s.log.Error("reloading revocations", "err", err)
		return
	}
	s.mu.Lock()
	conns := make([]*conn, 0, len(s.peers))
	for _, c := range s.peers {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.sendTrust()
	}
}

// sendTrust sends the device its haven-trust message. Plain automerge-repo
// clients drop it unread.
func (c *conn) sendTrust() {
	t, err := c.s.orgs.TrustFor(c.dev)
	if err != nil {
		c.s.log.Error("trust for device", "device", c.dev.ID, "err", err)
		return
	}
	data, err := json.Marshal(t)
	if err != nil {
		return
	}
	c.send(wire.Message{Type: wire.TypeHavenTrust, Data: data})
}

// certRequest takes a haven-cert-request and answers with the device's
// trust, which says where the request stands.
func (c *conn) certRequest(m wire.Message) {
	var req wire.CertRequest
	if err := json.Unmarshal(m.Data, &req); err != nil {
		c.send(wire.Message{Type: wire.TypeError, ErrorMessage: "certificate request unreadable", ErrorCode: wire.CodeBadRequest})
		return
	}
	if _, err := c.s.orgs.RequestCertificate(c.ctx, c.dev, req); err != nil {
		code := wire.CodeBadRequest
		if !errors.Is(err, orgs.ErrBadRequest) {
			c.s.log.Error("certificate request", "device", c.dev.ID, "err", err)
			code = wire.CodeInternal
		}
		c.s.metrics.refused.WithLabelValues("cert-request").Inc()
		c.send(wire.Message{Type: wire.TypeError, ErrorMessage: err.Error(), ErrorCode: code})
		return
	}
	c.sendTrust()
}

// leaver revokes a member of staff's certificate on their home manager's
// signed word (orgs.RevokeForLeaver), then answers with the trust that
// carries the revocation; every other connection hears of it as of any
// revocation.
func (c *conn) leaver(m wire.Message) {
	var l wire.Leaver
	if err := json.Unmarshal(m.Data, &l); err != nil {
		c.send(wire.Message{Type: wire.TypeError, ErrorMessage: "leaver notice unreadable", ErrorCode: wire.CodeBadRequest})
		return
	}
	if _, err := c.s.orgs.RevokeForLeaver(c.ctx, c.dev, l); err != nil {
		code := wire.CodeNotPermitted
		if !errors.Is(err, orgs.ErrNotPermitted) {
			c.s.log.Error("leaver notice", "device", c.dev.ID, "err", err)
			code = wire.CodeInternal
		} else {
			c.s.log.Warn("leaver notice refused", "device", c.dev.ID, "err", err)
		}
		c.s.metrics.refused.WithLabelValues("leaver").Inc()
		c.send(wire.Message{Type: wire.TypeError, ErrorMessage: "staff removal refused: " + err.Error(), ErrorCode: code})
		return
	}
	c.sendTrust()
}

// workerTrust is the Host's Trust: what workers check signatures against.
func (s *Server) workerTrust() ([]byte, []cert.Revocation, uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.orgs.Anchor(), append([]cert.Revocation(nil), s.revocations...), uint64(len(s.revocations)) + 1
}

// who answers a haven-who: for a document in the device's scope, the
// enrolled device that first sent each named actor's changes. Out of scope
// and unknown documents get an empty answer, as a missing one would.
func (c *conn) who(m wire.Message) {
	var req wire.WhoRequest
	if err := json.Unmarshal(m.Data, &req); err != nil || len(req.Actors) > wire.MaxWhoActors {
		c.send(wire.Message{Type: wire.TypeError, ErrorMessage: "who request unreadable or too long", ErrorCode: wire.CodeBadRequest})
		return
	}
	out := wire.Who{Doc: req.Doc, Devices: map[string]wire.DeviceName{}}
	if owner := c.s.owner(req.Doc); owner != "" && c.mayHold(req.Doc, owner) {
		names := map[string]wire.DeviceName{}
		for _, a := range req.Actors {
			if !validActor(a) {
				continue
			}
			dev, err := c.s.st.Get(nsProvenance, a)
			if err != nil {
				continue
			}
			n, ok := names[string(dev)]
			if !ok {
				d, err := c.s.orgs.Device(string(dev))
				if err != nil {
					continue
				}
				n = wire.DeviceName{ID: d.ID, Name: d.Name, Org: d.Org}
				names[string(dev)] = n
			}
			out.Devices[a] = n
		}
	}
	data, _ := json.Marshal(out)
	c.send(wire.Message{Type: wire.TypeHavenWho, Data: data})
}
