// Package loadtest drives Haven's relay (syncd) and the official JavaScript
// sync server (automerge-repo's Node websocket server with file-system
// storage, syncd/interop/server.mjs) with the same Go clients, so that their
// figures can be set side by side, and drives a region of care homes on
// Haven's relay alone. `make bench` runs its three benchmarks,
// BenchmarkLive, BenchmarkFreshDevice and BenchmarkRegion, each printing
// one table.
//
// Both servers run as separate processes on loopback, each started afresh for
// each benchmark, so that what they cost can be read from /proc: CPU seconds
// (utime+stime) and peak resident memory (VmHWM, reset per phase through
// clear_refs), for syncd summed over its CRDT worker processes.
//
// The clients are shared/client, the desktop's own sync client, each over a
// lean in-memory store (memStorage) instead of an encrypted Badger folder:
// twenty Badger stores would compete with the servers for the machine, and
// what a client stores does not change what a server does. The JavaScript
// server ignores the credential; syncd gets real ones, enrolled through its
// admin socket and POST /enroll.
//
// The two scenarios, from the relay issue:
//
//   - Live (live.go, ledger.go): N clients each append notes to the same
//     residents' timelines at rising rates. Each note carries its sender's
//     clock in its text; each other client reads it out of its own copy the
//     moment the change is applied there, which gives edit-to-other-client
//     latency, and a note some client never reads is missing. The servers'
//     steps are interleaved, so that other work on a shared machine falls on
//     both alike; each step's table row also says how much CPU the rest of
//     the machine used meanwhile.
//   - Fresh device (fresh.go): a new client downloads every resident record,
//     through a proxy that counts the bytes on the wire (proxy.go); with
//     -loadtest.client js, the official client (freshjs.go), asking for a
//     hundred records at a time.
//
// And the region (region.go), Haven's relay only: care homes of 60
// residents, two devices each, one device in ten editing, on one node and
// on a three-node cluster (a home's two devices on different nodes). The
// editors share the region's edit rate, each at a random phase of its own,
// so that edits reach the relay as independent devices' do. Each run
// measures the relay's memory, edit-to-other-device latency, a new
// device's bootstrap and a killed node's time to serve again, to have its
// devices back, and to have answered every document they offered on
// coming back (every device offers all it holds at once); its memory
// both as the peak over the edit window and at the window's end. The window
// begins once every node's workers have let the seeding's documents go
// and its memory has stopped falling (-loadtest.region-settle bounds the
// wait; 0 begins it as the seeding
// ends, in the wake of thousands of documents written at once); runs at
// several sizes give a straight line per figure, read at the full region
// of 1,000 homes and printed as a projection (knobs in region_test.go):
//
//	go test -timeout 60m -run '^$' -bench Region -benchtime 1x ./syncd/internal/loadtest/ -loadtest.region-homes 10,20,40
//
// Quick run, then the full one (knobs in loadtest_test.go):
//
//	HAVEN_BENCH_STEP=3s go test -run '^$' -bench . -benchtime 1x ./syncd/internal/loadtest/
//	go test -run '^$' -bench . -benchtime 1x ./syncd/internal/loadtest/
//
// The clients and the server share the machine's CPUs: on a small machine
// the clients' own Automerge work caps the rate any server can be seen to
// hold. Where there are CPUs to spare, give each side its own, e.g. on 8:
//
//	HAVEN_BENCH_SERVER_CPUS=4-7 taskset -c 0-3 go test -run '^$' -bench Live -benchtime 1x ./syncd/internal/loadtest/
package loadtest
