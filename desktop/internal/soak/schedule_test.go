package soak

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"haven/shared/rig"
)

// The fault schedule is drawn from the seed before anything runs, so a
// seed always means the same faults at the same offsets, the same edits
// and the same hostile messages; -soak.seed replays a run. (The line's
// per-segment loss draws from the seed too, but which segment a byte lands
// in depends on timing, so packet-level loss is not bit-exact on replay.)

type faultKind string

const (
	evRelayKill  faultKind = "relay-kill"
	evRelayStart faultKind = "relay-start"
	evAgentKill  faultKind = "agent-kill"
	evAgentStart faultKind = "agent-start"
	evCut        faultKind = "cut"
	evHole       faultKind = "blackhole"
	evHeal       faultKind = "heal"
	evNote       faultKind = "note"
	evDecide     faultKind = "decide"
	// cluster mode's
	evNodeKill    faultKind = "node-kill"
	evNodeStart   faultKind = "node-start"
	evPartition   faultKind = "partition"
	evUnpartition faultKind = "unpartition"
)

// event is one scheduled action in a round, at an offset from its start.
type event struct {
	At    time.Duration
	Kind  faultKind
	Agent int           // index, for agent and link events and edits
	Node  int           // index, for node events (cluster mode)
	Dir   rig.Direction // for blackholes
	N     int           // resident pick, for edits
	Rec   bool          // CPR recommended, for decisions
	Tag   string        // for edits
}

func (e event) String() string {
	s := fmt.Sprintf("%8.3fs %-11s", e.At.Seconds(), e.Kind)
	switch e.Kind {
	case evAgentKill, evAgentStart, evCut, evHeal:
		s += fmt.Sprintf(" agent %d", e.Agent)
	case evHole:
		s += fmt.Sprintf(" agent %d %s", e.Agent, e.Dir)
	case evNote, evDecide:
		s += fmt.Sprintf(" agent %d resident #%d %s", e.Agent, e.N, e.Tag)
	case evNodeKill, evNodeStart, evPartition, evUnpartition:
		s += fmt.Sprintf(" node %d", e.Node)
	}
	return s
}

// schedule is the whole chaos phase.
type schedule struct {
	Rounds [][]event
}

// share splits total as evenly as possible over n parts; part i's share.
func share(total, n, i int) int {
	return total/n + btoi(i < total%n)
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func uniform(rng *rand.Rand, lo, hi time.Duration) time.Duration {
	if hi <= lo {
		return lo
	}
	return lo + time.Duration(rng.Int64N(int64(hi-lo)))
}

// slotted splits the window w into k slots and calls add with, for each, a
// random point in the slot's first part and a length from minD up to maxD
// that ends inside the slot: one fault at a time, each undone in its slot.
func slotted(rng *rand.Rand, k int, w, minD, maxD time.Duration, add func(at, d time.Duration)) {
	if k <= 0 {
		return
	}
	slot := w / time.Duration(k)
	for i := 0; i < k; i++ {
		base := slot * time.Duration(i)
		at := base + uniform(rng, 0, slot*2/5)
		add(at, uniform(rng, minD, min(slot*9/10-(at-base), maxD)))
	}
}

// makeSchedule draws the chaos phase from the seed.
func makeSchedule(cfg config, agents int) schedule {
	var s schedule
	w := cfg.window
	for r := 0; r < cfg.rounds; r++ {
		rng := rand.New(rand.NewPCG(cfg.seed, uint64(r)))
		// Cluster mode draws its nodes from a source of its own, so a seed
		// draws the same single-relay schedule as it always did.
		crng := rand.New(rand.NewPCG(cfg.seed, uint64(r)|1<<32))
		var evs []event
		// Relay kills: one per slot, at a random point in the slot's first
		// part, down for a random time that ends inside the slot.
		slotted(rng, share(cfg.relayKills, cfg.rounds, r), w, 50*time.Millisecond, 3*time.Second, func(at, down time.Duration) {
			if cfg.cluster {
				n := crng.IntN(clusterNodes)
				evs = append(evs, event{At: at, Kind: evNodeKill, Node: n}, event{At: at + down, Kind: evNodeStart, Node: n})
				return
			}
			evs = append(evs, event{At: at, Kind: evRelayKill}, event{At: at + down, Kind: evRelayStart})
		})
		// Partitions (cluster mode): one node cut off from the others, one
		// at a time, for up to 8 s of its slot.
		if cfg.cluster {
			slotted(crng, share(cfg.partitions, cfg.rounds, r), w, 500*time.Millisecond, 8*time.Second, func(at, d time.Duration) {
				n := crng.IntN(clusterNodes)
				evs = append(evs, event{At: at, Kind: evPartition, Node: n}, event{At: at + d, Kind: evUnpartition, Node: n})
			})
		}
		// Desktop kills: likewise, on a random desktop each.
		slotted(rng, share(cfg.agentKills, cfg.rounds, r), w, 50*time.Millisecond, 2*time.Second, func(at, down time.Duration) {
			ag := rng.IntN(agents)
			evs = append(evs, event{At: at, Kind: evAgentKill, Agent: ag}, event{At: at + down, Kind: evAgentStart, Agent: ag})
		})
		// Link faults: each desktop's line drops now and then, for up to
		// 6 s, one fault at a time; whatever is still broken at the end of
		// the window is healed then.
		for ag := 0; ag < agents; ag++ {
			t := uniform(rng, 0, w/2)
			for t < w {
				ev := event{At: t, Agent: ag}
				switch x := rng.IntN(100); {
				case x < 35:
					ev.Kind = evCut
				case x < 60:
					ev.Kind, ev.Dir = evHole, rig.Both
				case x < 80:
					ev.Kind, ev.Dir = evHole, rig.Up
				default:
					ev.Kind, ev.Dir = evHole, rig.Down
				}
				d := uniform(rng, 300*time.Millisecond, 6*time.Second)
				evs = append(evs, ev)
				if t+d < w {
					evs = append(evs, event{At: t + d, Kind: evHeal, Agent: ag})
				}
				t += d + uniform(rng, time.Second, w)
			}
		}
		// Edits: each desktop's staff write notes, and now and then a CPR
		// decision, at exponential gaps.
		for ag := 0; ag < agents; ag++ {
			t := time.Duration(rng.ExpFloat64() * float64(cfg.editGap))
			for i := 0; t < w; i++ {
				ev := event{At: t, Agent: ag, Kind: evNote, N: rng.IntN(1 << 20), Tag: fmt.Sprintf("s%d-r%d-a%d-%d", cfg.seed, r, ag, i)}
				if rng.IntN(100) < 15 {
					ev.Kind, ev.Rec = evDecide, rng.IntN(2) == 0
				}
				evs = append(evs, ev)
				t += time.Duration(rng.ExpFloat64() * float64(cfg.editGap))
			}
		}
		slices.SortStableFunc(evs, func(a, b event) int {
			if a.At != b.At {
				return int(a.At - b.At)
			}
			return 0
		})
		s.Rounds = append(s.Rounds, evs)
	}
	return s
}

func (s schedule) String() string {
	var b strings.Builder
	for r, evs := range s.Rounds {
		fmt.Fprintf(&b, "round %d\n", r)
		for _, e := range evs {
			fmt.Fprintf(&b, "  %s\n", e)
		}
	}
	return b.String()
}

// digest identifies the schedule, so two runs can be seen to share one.
func (s schedule) digest() string {
	sum := sha256.Sum256([]byte(s.String()))
	return hex.EncodeToString(sum[:6])
}

func (s schedule) count(k faultKind) int {
	n := 0
	for _, evs := range s.Rounds {
		for _, e := range evs {
			if e.Kind == k {
				n++
			}
		}
	}
	return n
}

// TestScheduleReplays: a seed always draws the same schedule, with the
// kills asked for, and another seed draws another.
func TestScheduleReplays(t *testing.T) {
	cfg := config{seed: 42, rounds: 20, window: 14 * time.Second, relayKills: 200, agentKills: 200, editGap: 1500 * time.Millisecond}
	a, b := makeSchedule(cfg, 5), makeSchedule(cfg, 5)
	if a.digest() != b.digest() || a.String() != b.String() {
		t.Fatal("one seed drew two schedules")
	}
	if n := a.count(evRelayKill); n != 200 {
		t.Errorf("%d relay kills scheduled, want 200", n)
	}
	if n := a.count(evAgentKill); n != 200 {
		t.Errorf("%d desktop kills scheduled, want 200", n)
	}
	for r, evs := range a.Rounds {
		for _, e := range evs {
			if e.At < 0 || e.At > cfg.window {
				t.Errorf("round %d: %s outside the %v window", r, e, cfg.window)
			}
		}
	}
	cfg.seed = 43
	if makeSchedule(cfg, 5).digest() == a.digest() {
		t.Error("two seeds drew the same schedule")
	}
}
