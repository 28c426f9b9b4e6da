package soak

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"testing"
	"time"
)

// TestMain turns the test binary into an agent when AgentEnv is set (the
// suite starts its desktops that way), into the attacker's computer when
// attackerEnv is (attacker_test.go), and runs the tests otherwise.
func TestMain(m *testing.M) {
	if raw := os.Getenv(AgentEnv); raw != "" {
		var cfg AgentConfig
		if err := json.Unmarshal([]byte(raw), &cfg); err != nil {
			fmt.Fprintln(os.Stderr, "agent config:", err)
			os.Exit(2)
		}
		if err := RunAgent(cfg, os.Stdin, os.Stdout, os.Stderr); err != nil {
			fmt.Fprintln(os.Stderr, "agent:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	if os.Getenv(attackerEnv) != "" {
		if err := runAttacker(os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "attacker:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	if raw := os.Getenv(classifyEnv); raw != "" {
		if err := runClassify(raw); err != nil {
			fmt.Fprintln(os.Stderr, "classify:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

var (
	flagFull           = flag.Bool("soak.full", false, "run the full soak (200 relay kills, 200 desktop kills, long hostile phase); default is the fast subset")
	flagSeed           = flag.Uint64("soak.seed", 0, "seed of the fault schedule; 0 picks one (printed, so a failing run can be replayed)")
	flagDuration       = flag.Duration("soak.duration", 0, "length of the chaos phase (the rounds' fault windows together); 0 keeps the mode's default")
	flagRounds         = flag.Int("soak.rounds", 0, "chaos rounds (each: a fault window, then heal and measure convergence); 0 keeps the mode's default")
	flagRelayKills     = flag.Int("soak.relay-kills", -1, "SIGKILLs of the relay (in cluster mode, of a node) in the chaos phase; -1 keeps the mode's default")
	flagPartitions     = flag.Int("soak.partitions", -1, "in cluster mode, partitions of one node from the others in the chaos phase; -1 keeps the mode's default")
	flagAgentKills     = flag.Int("soak.agent-kills", -1, "SIGKILLs of desktop sync processes in the chaos phase; -1 keeps the mode's default")
	flagAgents         = flag.Int("soak.agents", 0, "desktops (3 to 6: LAN, 4G hub, rural, failing line, rural, 4G); 0 keeps the mode's default (3 fast, 5 full)")
	flagDir            = flag.String("soak.dir", "", "keep the run's data, logs, ack log and schedule in this folder (default: a temporary folder, kept only if the run fails)")
	flagAttacks        = flag.String("soak.attacks", "", "comma-separated hostile attacks to run (unenrolled, revoked, out-of-scope, mutated, slowloris, silent, never-reads, oversized, garbage); default all")
	flagDesktopsOnDisk = flag.Bool("soak.desktops-on-disk", false, "keep the desktops' stores on the run's disk, beside the relay's, instead of in memory (/dev/shm)")
	flagNoFlood        = flag.Bool("soak.no-flood", false, "skip the connection flood (one enrolled device opening the relay's whole connection allowance)")
)

// config is one run's shape.
type config struct {
	mode           string
	seed           uint64
	agents         int
	rounds         int
	window         time.Duration // fault window per round
	relayKills     int
	agentKills     int
	editGap        time.Duration // mean gap between one desktop's edits during chaos
	converge       time.Duration // deadline for convergence after a heal
	hostileWin     time.Duration // one slice of the latency measurement
	hostileSlices  int           // slices without the attack (and as many with it)
	mutations      int           // mutated sync messages
	floodConns     int
	extraResidents int // added to the demo's 40 so the home has 60
	// cluster runs three relay nodes (-soak.cluster): relayKills are then
	// node kills, each of a node drawn at random, and partitions cut one
	// node's routes to the others.
	cluster    bool
	partitions int
}

func loadConfig() config {
	c := config{mode: "fast", agents: 3, rounds: 2, window: 6 * time.Second, relayKills: 3, agentKills: 3,
		editGap: 1500 * time.Millisecond, converge: 90 * time.Second, hostileWin: 2500 * time.Millisecond, hostileSlices: 2, mutations: 200,
		floodConns: 1000, extraResidents: 20}
	if *flagFull {
		c = config{mode: "full", agents: 5, rounds: 16, window: 14 * time.Second, relayKills: 200, agentKills: 200,
			editGap: 1500 * time.Millisecond, converge: 120 * time.Second, hostileWin: 4 * time.Second, hostileSlices: 8, mutations: 1000,
			floodConns: 1000, extraResidents: 20}
	}
	if *flagCluster {
		// A node's restart waits for its catch-up from the stream, and the
		// stream's leader elections take seconds: a node killed every
		// second would leave the cluster no time to be one. Three kills
		// and two partitions a round.
		c.mode += "-cluster"
		c.cluster = true
		c.relayKills, c.partitions = 3*c.rounds, 2*c.rounds
	}
	if *flagAgents > 0 {
		c.agents = min(max(*flagAgents, 3), 6)
	}
	if *flagRounds > 0 {
		if c.cluster {
			c.relayKills, c.partitions = 3**flagRounds, 2**flagRounds
		}
		c.rounds = *flagRounds
	}
	if *flagDuration > 0 {
		c.window = *flagDuration / time.Duration(c.rounds)
	}
	if *flagRelayKills >= 0 {
		c.relayKills = *flagRelayKills
	}
	if *flagPartitions >= 0 && c.cluster {
		c.partitions = *flagPartitions
	}
	if *flagAgentKills >= 0 {
		c.agentKills = *flagAgentKills
	}
	c.seed = *flagSeed
	if c.seed == 0 {
		c.seed = uint64(time.Now().UnixNano()%1_000_000_000) + 1
	}
	return c
}
