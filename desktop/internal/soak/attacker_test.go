package soak

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"haven/shared/lowprio"
	"haven/shared/wire"
)

// The attacker's computer. The hostile and insider phases' attacks run in
// a process of their own (the test binary again, as the desktops are), every
// thread of it under the idle policy (lowprio.IdleProcess): an attacker is
// another computer, so its own work of building, encoding and sending its
// frames takes only the CPU the relay, the desktops and the suite leave,
// and what is measured is what the relay does for it.
//
// Not in the suite's own process: the suite carries every healthy byte
// through its link proxies, and a goroutine on an idle thread holds one of
// the Go runtime's processors while the kernel keeps that thread waiting.
// With the attacks there, the proxies waited for the machine's busy moments
// to pass, and the healthy desktops' p99 rose by half or more in the
// attacked slices with nothing on the machine saturated.
//
// The suite writes the kit (one JSON value) and then one command at a time
// to the child's stdin; the child answers each on stdout. "start" begins a
// slice; "finish" ends it and is answered with everything the attacks have
// seen so far. The child ends when its stdin does.

// attackerEnv makes the test binary the attacker (TestMain).
const attackerEnv = "HAVEN_SOAK_ATTACKER"

// attackKit is everything the attacks need, as the child receives it.
type attackKit struct {
	Addr                                          string
	Larch, Birch                                  []string
	Plan                                          []plannedJSON
	BirchCred, LarchCred, RevCred, UnenrolledCred string
	Seed                                          uint64
	Attacks                                       string // -soak.attacks
	Insider                                       *insiderJSON
}

type plannedJSON struct {
	Doc  string
	Type wire.Type
	Data []byte
	Kind string
}

type insiderJSON struct {
	Resident                    string
	Tamper, NewDoc, Burst, Junk []byte
	AuditSeq                    uint64
}

// attackCommand is one line of the suite to the child.
type attackCommand struct {
	Do string // "start" or "finish"
}

// attackReport is the child's answer: after "finish", what the attacks saw
// from the first slice on.
type attackReport struct {
	Outcomes map[string]int
	Codes    map[string]int
	Leaks    []string
	Slowest  time.Duration
	Frames   int64
	Conns    int64
	Said     []string // lines for the suite's event log
	Err      string
}

// kit describes at for the child.
func (at *attack) kit() attackKit {
	k := attackKit{Addr: at.addr, Larch: at.larch, Birch: at.birch, BirchCred: at.birchCred, LarchCred: at.larchCred,
		RevCred: at.revCred, UnenrolledCred: at.unenrolledCred, Seed: at.seed, Attacks: *flagAttacks}
	for _, p := range at.plan {
		k.Plan = append(k.Plan, plannedJSON{Doc: p.doc, Type: p.typ, Data: p.data, Kind: p.kind})
	}
	if in := at.insider; in != nil {
		k.Insider = &insiderJSON{Resident: in.resident, Tamper: in.tamper, NewDoc: in.newDoc, Burst: in.burst, Junk: in.junk, AuditSeq: in.auditSeq}
	}
	return k
}

// attackFromKit is the child's attack.
func attackFromKit(k attackKit, logf func(string, ...any)) *attack {
	at := &attack{addr: k.Addr, larch: k.Larch, larchSet: map[string]bool{}, birch: k.Birch, birchCred: k.BirchCred, larchCred: k.LarchCred,
		revCred: k.RevCred, unenrolledCred: k.UnenrolledCred, seed: k.Seed, attacks: k.Attacks, logf: logf}
	for _, id := range k.Larch {
		at.larchSet[id] = true
	}
	for _, p := range k.Plan {
		at.plan = append(at.plan, planned{doc: p.Doc, typ: p.Type, data: p.Data, kind: p.Kind})
	}
	if in := k.Insider; in != nil {
		at.insider = &insiderKit{resident: in.Resident, tamper: in.Tamper, newDoc: in.NewDoc, burst: in.Burst, junk: in.Junk, auditSeq: in.AuditSeq}
		at.runs = []attackRun{{"hog", at.hogConnections}, {"insider", at.insiderLoop}}
	}
	return at
}

// runAttacker is the child: it reads the kit and then commands from in.
func runAttacker(in io.Reader, out io.Writer) error {
	if err := lowprio.IdleProcess(); err != nil {
		return fmt.Errorf("idle policy: %w", err)
	}
	dec, enc := json.NewDecoder(in), json.NewEncoder(out)
	var k attackKit
	if err := dec.Decode(&k); err != nil {
		return fmt.Errorf("kit: %w", err)
	}
	var said []string
	at := attackFromKit(k, func(format string, args ...any) { said = append(said, fmt.Sprintf(format, args...)) })
	for {
		var c attackCommand
		if err := dec.Decode(&c); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("command: %w", err)
		}
		var rep attackReport
		switch c.Do {
		case "start":
			at.start()
		case "finish":
			at.finish()
			at.mu.Lock()
			rep = attackReport{Outcomes: at.outcomes, Codes: at.codes, Leaks: at.leaks, Slowest: at.slowest,
				Frames: at.frames.Load(), Conns: at.conns.Load(), Said: said}
			at.mu.Unlock()
			said = nil
		default:
			rep.Err = "unknown command " + c.Do
		}
		if err := enc.Encode(rep); err != nil {
			return err
		}
	}
}

// attackerProc is the suite's side of the child.
type attackerProc struct {
	cmd  *exec.Cmd
	in   io.WriteCloser
	enc  *json.Encoder
	dec  *json.Decoder
	done chan struct{}
}

// startAttacker starts the child for at; its stderr goes to name.log in
// the run's folder. The phase closes it when done.
func (h *harness) startAttacker(at *attack, name string) (*attackerProc, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	logf, err := os.Create(filepath.Join(h.root, name+".log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), attackerEnv+"=1")
	cmd.Stderr = logf
	in, err := cmd.StdinPipe()
	if err != nil {
		logf.Close()
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		logf.Close()
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, err
	}
	p := &attackerProc{cmd: cmd, in: in, enc: json.NewEncoder(in), dec: json.NewDecoder(out), done: make(chan struct{})}
	go func() { cmd.Wait(); logf.Close(); close(p.done) }()
	if err := p.enc.Encode(at.kit()); err != nil {
		p.close()
		return nil, fmt.Errorf("sending the kit: %w", err)
	}
	return p, nil
}

// call sends one command and returns the child's answer.
func (p *attackerProc) call(do string) (attackReport, error) {
	var rep attackReport
	if err := p.enc.Encode(attackCommand{Do: do}); err != nil {
		return rep, err
	}
	if err := p.dec.Decode(&rep); err != nil {
		return rep, fmt.Errorf("the attacker's answer to %s: %w", do, err)
	}
	if rep.Err != "" {
		return rep, errors.New(rep.Err)
	}
	return rep, nil
}

// close ends the child: its stdin closes, and it is killed if it has not
// ended 10 s later.
func (p *attackerProc) close() {
	p.in.Close()
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
}
