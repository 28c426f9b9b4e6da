package relay

import (
	"errors"

	"haven/shared/transport"
	"haven/shared/wire"
	"haven/syncd/internal/orgs"
)

// Changes an administrator makes apply to live connections at once, not at
// the next connection: a stolen laptop is cut off while it is connected,
// and a hub that stops covering a home hears nothing more of it.

// DeviceRevoked closes every connection of a revoked device, telling it
// why. It returns how many it closed.
func (s *Server) DeviceRevoked(deviceID string) int {
	s.mu.Lock()
	var closing []*conn
	for c := range s.conns {
		if c.dev.ID == deviceID {
			closing = append(closing, c)
		}
	}
	s.mu.Unlock()
	for _, c := range closing {
		c.failCode("this device's access has been revoked: ask your administrator to enrol it again", wire.CodeDeviceRevoked, transport.ClosePolicyViolation)
	}
	if len(closing) > 0 {
		s.log.Warn("revoked device cut off", "device", deviceID, "connections", len(closing))
	}
	return len(closing)
}

// ScopesChanged reads every live connection's scope afresh (an
// organisation's coverage changed): a device that may no longer connect is
// cut off; one that lost documents is unsubscribed from them, so nothing
// about them is sent to it again. It returns how many connections lost
// access to something.
func (s *Server) ScopesChanged() int {
	s.mu.Lock()
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	changed := 0
	for _, c := range conns {
		scope, err := s.orgs.Scope(c.dev)
		if errors.Is(err, orgs.ErrRevoked) {
			c.failCode("this device's access has been revoked: ask your administrator to enrol it again", wire.CodeDeviceRevoked, transport.ClosePolicyViolation)
			changed++
			continue
		}
		if err != nil {
			c.failCode("this device's organisation could not be found", wire.CodeDeviceRevoked, transport.ClosePolicyViolation)
			changed++
			continue
		}
		old := c.sc()
		c.scope.Store(&scope)
		lost := 0
		s.mu.Lock()
		for doc, subs := range s.subs {
			if subs[c.peer.ID] && old.Allows(s.owners[doc]) && !scope.Allows(s.owners[doc]) {
				delete(subs, c.peer.ID)
				lost++
			}
		}
		s.mu.Unlock()
		if lost > 0 {
			changed++
			s.log.Info("device lost access to documents", "device", c.dev.ID, "documents", lost)
		}
	}
	return changed
}

// failCode tells the device why it is being disconnected, with a code, and
// closes the connection.
func (c *conn) failCode(reason, code string, closeCode int) {
	c.send(wire.Message{Type: wire.TypeError, ErrorMessage: reason, ErrorCode: code})
	c.tc.Close(closeCode, reason)
}
