// Package rig is the one test rig for whole-system tests: the relay's
// tests, the desktop's end-to-end tests, the soak and the load driver all
// start syncd, reach it through a fault proxy, attack it and classify its
// refusals through here, so they cannot drift apart.
//
//   - Syncd builds ./syncd once per test binary (concurrent callers share
//     the build), or runs syncd's command function in this process for
//     syncd's own tests.
//   - Relay starts `syncd serve` on port 0 and reads the address the relay
//     bound from the line it prints, so no port is picked, freed and handed
//     on for another process to take; a restart reuses the relay's
//     address, since the devices and links of a test point at it. It also
//     runs admin commands and enrols devices.
//   - Link is the fault proxy: latency, loss, bandwidth, cuts and
//     blackholes per line, and byte counts each way.
//   - The hostile kit (hostile.go) holds what the hostile suites share:
//     a protocol peer that may send anything, hand-made websocket frames,
//     and mutated sync messages.
//   - Classify names what a refusal means from its machine-readable code
//     alone (wire's Code constants); no test reads the relay's English.
//   - Until, Signal and Recv wait for an event or a condition with a
//     deadline; nothing here sleeps a fixed time to wait for something.
//
// The rig imports nothing from desktop/ or syncd/: it runs syncd as a
// program (or as the function its own tests hand it).
package rig
