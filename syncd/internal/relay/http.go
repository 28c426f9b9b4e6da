package relay

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"haven/shared/transport"
	"haven/shared/wire"
	"haven/syncd/internal/orgs"
)

// Handler is the relay's HTTP face:
//
//	GET  /sync, GET /   websocket (automerge-repo protocol); credential in
//	                    "Authorization: Bearer …" or ?token=… for JavaScript
//	POST /enroll        {"code": "…"} → the device's credential, once
//	GET  /healthz       200 while the relay serves
//	GET  /metrics       Prometheus
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /sync", s.serveSync)
	mux.HandleFunc("GET /{$}", s.serveSync)
	mux.HandleFunc("POST /enroll", s.serveEnroll)
	mux.HandleFunc("GET /healthz", s.serveHealth)
	mux.Handle("GET /metrics", s.metrics.Handler())
	return mux
}

func credential(r *http.Request) string {
	if h := r.Header.Get("Authorization"); h != "" {
		if tok, ok := strings.CutPrefix(h, "Bearer "); ok {
			return strings.TrimSpace(tok)
		}
	}
	return r.URL.Query().Get("token")
}

// serveSync authenticates, then upgrades, always: refusing the upgrade
// with a bare 401 makes automerge-repo's JavaScript client throw, so a bad
// credential is answered in the protocol (an error message, then a close).
// A refused connection reads at most a small frame (its join), and one
// address may hold only a few refused connections open at once.
func (s *Server) serveSync(w http.ResponseWriter, r *http.Request) {
	if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
		http.Error(w, "this endpoint speaks websocket (automerge-repo protocol)", http.StatusBadRequest)
		return
	}
	ctx := r.Context()
	dev, _, authErr := s.orgs.Authenticate(ctx, credential(r))
	var scope orgs.Scope
	if authErr == nil {
		scope, authErr = s.orgs.Scope(dev)
	}
	if authErr != nil {
		if !s.openUnauth(r.RemoteAddr) {
			s.metrics.refused.WithLabelValues("unauthenticated-flood").Inc()
			http.Error(w, "too many refused connections from this address", http.StatusTooManyRequests)
			return
		}
		defer s.closeUnauth(r.RemoteAddr)
		opts := s.cfg.Transport
		opts.ReadLimit = s.cfg.Limits.PreAuthReadLimit
		tc, err := transport.Upgrade(w, r, opts)
		if err != nil {
			return
		}
		reason, code := "this device is not enrolled: enrol it with a one-time code from your administrator", wire.CodeNotEnrolled
		if errors.Is(authErr, orgs.ErrRevoked) {
			reason, code = "this device's access has been revoked: ask your administrator to enrol it again", wire.CodeDeviceRevoked
		}
		s.metrics.refused.WithLabelValues("unauthenticated").Inc()
		s.log.Warn("connection refused", "remote", r.RemoteAddr, "code", code)
		refuse(ctx, tc, s.peerID, transport.ClosePolicyViolation, reason, code)
		return
	}
	tc, err := transport.Upgrade(w, r, s.cfg.Transport)
	if err != nil {
		s.log.Warn("websocket upgrade failed", "remote", r.RemoteAddr, "err", err)
		return
	}
	s.Accept(ctx, tc, dev, scope)
}

func (s *Server) serveEnroll(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Code string `json:"code"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096)).Decode(&req); err != nil {
		http.Error(w, `{"error":"send {\"code\": \"…\"}"}`, http.StatusBadRequest)
		return
	}
	dev, cred, err := s.orgs.Redeem(r.Context(), req.Code)
	if err != nil {
		s.metrics.refused.WithLabelValues("bad-enrolment-code").Inc()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusForbidden)
		json.NewEncoder(w).Encode(wire.Enrollment{Error: "that code is not valid: it may be mistyped, used already or expired; ask your administrator for a new one"})
		return
	}
	org, err := s.orgs.Org(dev.Org)
	if err != nil {
		http.Error(w, `{"error":"organisation missing"}`, http.StatusInternalServerError)
		return
	}
	s.log.Info("device enrolled", "device", dev.ID, "org", org.ID)
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(wire.Enrollment{
		Device: dev.ID, DeviceName: dev.Name, Org: org.ID, OrgName: org.Name, OrgKind: string(org.Kind),
		Homes: org.Homes, Directory: org.Directory, Credential: cred, Anchor: s.orgs.Anchor(), RelayURLs: s.cfg.RelayURLs,
	})
}

func (s *Server) serveHealth(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	ok := s.work != nil && !s.closing
	s.mu.Unlock()
	if !ok {
		http.Error(w, "not serving", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	w.Write([]byte("ok " + time.Now().UTC().Format(time.RFC3339) + "\n"))
}
