// Package soak proves Haven under bad conditions, with nothing lost: the
// real relay (syncd, built from this checkout) and several desktops run as
// separate processes on this machine, each desktop reaching the relay
// through the rig's fault proxy (haven/shared/rig), while the suite
// (TestSoak, soak_test.go) kills processes, cuts and degrades links, sends
// hostile traffic and damages stores, then checks that no acknowledged
// change was lost and that every copy converged, and prints one summary
// table.
//
// A desktop here is the test binary re-executed in agent mode (agent.go):
// desktop/internal/app opened and unlocked headless, editing on command or
// on its own schedule and reporting each acknowledged change on stdout.
//
//	go test -run TestSoak ./desktop/internal/soak                 fast subset (part of make test)
//	go test -run TestSoak -timeout 60m ./desktop/internal/soak -soak.full   the whole soak (make soak)
//	... -soak.seed=N                                              replay a run's fault schedule
//	... -soak.dir=DIR                                             keep the run's logs, ack log and stores
package soak
