package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"haven/assets/demo"
	"haven/shared/cert"
	"haven/shared/client"
	"haven/shared/crdt"
	"haven/shared/docid"
	"haven/shared/nhs"
	"haven/shared/record"
	"haven/shared/repo"
	"haven/shared/rig"
	"haven/shared/store"
	"haven/shared/wire"
	"haven/syncd/internal/worker"
)

func TestMain(m *testing.M) {
	if os.Getenv(testWorkerEnv) == "child" {
		if err := worker.RunChild(nil); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Setenv(testWorkerEnv, "child") // children of relays started by tests run as workers
	os.Exit(m.Run())
}

// relayProc is syncd running in-process on a loopback port (the rig's
// relay, run through this package's own command function).
type relayProc struct {
	t    *testing.T
	r    *rig.Relay
	data string
	addr string
}

// anyPort has the relay listen on a loopback port the kernel picks; the
// relay says which, and a restart passes p.addr to come back on it.
const anyPort = "127.0.0.1:0"

// startRelay runs `syncd serve` on addr with the data folder, and waits for
// it to say where it is listening.
func startRelay(t *testing.T, data, addr string, extra ...string) *relayProc {
	t.Helper()
	r := rig.NewRelay(rig.RelayConfig{Syncd: rig.InProcess(run), Data: data, Listen: addr,
		Flags: append([]string{"-workers", "2", "-log-level", "warn"}, extra...)})
	if err := r.Start(); err != nil {
		t.Fatal(err)
	}
	p := &relayProc{t: t, r: r, data: data, addr: r.Addr()}
	t.Cleanup(p.stop)
	return p
}

// stop shuts the relay down; a later stop does nothing.
func (p *relayProc) stop() {
	if err := p.r.Stop(); err != nil {
		p.t.Errorf("syncd serve: %v", err)
	}
}

func (p *relayProc) url() string { return p.r.URL() }

// admin runs an admin command against the running relay (its socket).
func (p *relayProc) admin(args ...string) string {
	p.t.Helper()
	out, err := p.r.Admin(args...)
	if err != nil {
		p.t.Fatalf("syncd admin %v: %v", args, err)
	}
	return out
}

var idRE = regexp.MustCompile(`(home|hub|advice|dev)-[0-9a-z]+`)

// enroll makes a device for org and exchanges its code for a credential.
func (p *relayProc) enroll(org, name string) wire.Enrollment {
	p.t.Helper()
	return p.r.MustEnroll(p.t, org, name)
}

// device is a Go client with its own encrypted store.
type device struct {
	t      *testing.T
	name   string
	st     *store.Store
	repo   *repo.Repo
	client *client.Client
	ed     *record.Editor
	cancel context.CancelFunc
	runErr chan error

	mu          sync.Mutex
	unavailable map[docid.ID]chan struct{}
	codes       []string // the ErrorCode of each error, in order
	auditAcks   chan uint64
	anchor      []byte      // the organisation key, from enrolment
	trust       *cert.Trust // from the relay's last haven-trust; nil before
	certs       []cert.Certificate
	onWho       func(wire.Who)
	letGo       *memLetGo
}

// memLetGo is a device's list of documents the relay told it to let go.
type memLetGo struct {
	mu    sync.Mutex
	marks map[docid.ID]string
	added int // documents marked, in all
}

func (l *memLetGo) Add(ids []docid.ID, code, _ string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, id := range ids {
		l.marks[id] = code
	}
	l.added += len(ids)
}

func (l *memLetGo) Marked(id docid.ID) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	_, ok := l.marks[id]
	return ok
}

func (l *memLetGo) Remove(ids []docid.ID) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, id := range ids {
		delete(l.marks, id)
	}
}

func (l *memLetGo) code(id docid.ID) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.marks[id]
}

// newDevice makes a device online at urls: a relay, or its nodes in the
// order the device tries them.
func newDevice(t *testing.T, name string, enr wire.Enrollment, urls ...string) *device {
	t.Helper()
	st, err := store.Open(t.TempDir(), store.Options{Key: bytes.Repeat([]byte{9}, 32)})
	if err != nil {
		t.Fatal(err)
	}
	d := &device{t: t, name: name, st: st, unavailable: map[docid.ID]chan struct{}{}, auditAcks: make(chan uint64, 100),
		letGo: &memLetGo{marks: map[docid.ID]string{}}}
	d.repo = repo.New(st, repo.Options{OnChange: func(id docid.ID) {}})
	ed, err := record.NewEditor(record.Author{UserID: "staff-" + name, Name: name, Role: record.GP, RegNo: "GMC 7000001", DeviceID: enr.Device},
		record.Rules{NHS: nhs.Demo})
	if err != nil {
		t.Fatal(err)
	}
	d.ed = ed
	d.start(enr, urls...)
	t.Cleanup(func() {
		d.stop()
		d.repo.Close()
		st.Close()
	})
	return d
}

// start connects the device's client to the relay at urls, which are one
// relay's nodes: the client moves round them, in this order.
func (d *device) start(enr wire.Enrollment, urls ...string) {
	st := d.st
	d.client = client.New(client.Config{
		LetGo: d.letGo,
		URLs:  urls, Credential: enr.Credential, Repo: d.repo, States: st,
		PeerID: "peer-" + d.name, StorageID: "storage-" + d.name,
		Docs: func() []docid.ID {
			ids, _ := st.Docs()
			var out []docid.ID
			for _, s := range ids {
				if id, err := docid.Parse(s); err == nil {
					out = append(out, id)
				}
			}
			return out
		},
		MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond,
		OnUnavailable: func(id docid.ID) {
			d.mu.Lock()
			if ch, ok := d.unavailable[id]; ok {
				close(ch)
				delete(d.unavailable, id)
			}
			d.mu.Unlock()
		},
		OnError: func(code, _ string) {
			d.mu.Lock()
			d.codes = append(d.codes, code)
			d.mu.Unlock()
		},
		OnAuditAck: func(seq uint64) { d.auditAcks <- seq },
		OnWho: func(w wire.Who) {
			d.mu.Lock()
			f := d.onWho
			d.mu.Unlock()
			if f != nil {
				f(w)
			}
		},
		OnTrust: func(t wire.Trust) {
			if !bytes.Equal(t.Anchor, d.anchor) {
				return
			}
			d.mu.Lock()
			d.trust, d.certs = cert.NewTrust(t.Anchor, t.Revocations), t.Certificates
			d.mu.Unlock()
		},
	})
	d.anchor = enr.Anchor
	ctx, cancel := context.WithCancel(context.Background())
	d.cancel = cancel
	d.runErr = make(chan error, 1)
	go func() { d.runErr <- d.client.Run(ctx) }()
}

// stop disconnects the device; start connects it again. Calling it twice
// is harmless.
func (d *device) stop() {
	d.cancel()
	<-d.runErr
	d.runErr <- nil
}

// waitFor checks a condition on a client's state, which no event
// announces, until it holds; it fails the test after 20 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	rig.WaitFor(t, 20*time.Second, what, cond)
}

func (d *device) online() bool { return d.client.Status().Online }

// waitOnline waits until every one of devs is online (see waitFor); if one
// is not, the failure says, for each, which relay it last tried and why its
// last connection ended or failed.
func waitOnline(t *testing.T, devs ...*device) {
	t.Helper()
	if rig.Until(20*time.Second, func() bool {
		for _, d := range devs {
			if !d.online() {
				return false
			}
		}
		return true
	}) {
		return
	}
	var offline []string
	for _, d := range devs {
		if st := d.client.Status(); !st.Online {
			offline = append(offline, fmt.Sprintf("%s (last tried %s: %q)", d.name, st.Relay, st.LastError))
		}
	}
	t.Fatalf("timed out after 20s waiting for devices online: %s offline", strings.Join(offline, ", "))
}

// newResident creates a resident's record and timeline locally and offers them.
func (d *device) newResident(home, family string) record.NewDocs {
	d.t.Helper()
	docs := d.draftResident(home, family)
	d.addResident(docs)
	return docs
}

// drafted counts the residents tests make, so each is a person of their
// own: the relay refuses a second record naming one person's NHS number.
var drafted atomic.Int64

// draftResident makes a resident's documents without storing them.
func (d *device) draftResident(home, family string) record.NewDocs {
	d.t.Helper()
	return d.draftPerson(home, family, demo.NHSNumber(int(600000+11*drafted.Add(1))))
}

// draftPerson makes the documents of a resident with this NHS number,
// without storing them.
func (d *device) draftPerson(home, family, nhsNo string) record.NewDocs {
	d.t.Helper()
	docs, err := d.ed.NewResident(home, record.Identity{NHSNumber: nhsNo, GivenName: "Edith", FamilyName: family, DateOfBirth: "1931-04-02", Sex: "female", Room: "1"})
	if err != nil {
		d.t.Fatal(err)
	}
	return docs
}

// addResident stores a drafted resident's documents and offers them.
func (d *device) addResident(docs record.NewDocs) {
	d.t.Helper()
	for _, x := range []struct {
		id  docid.ID
		doc *crdt.Doc
	}{{docs.RecordID, docs.Record}, {docs.TimelineID, docs.Timeline}} {
		if _, err := d.repo.Create(context.Background(), x.id, x.doc); err != nil {
			d.t.Fatal(err)
		}
		d.client.Changed(x.id)
	}
}

// has reports whether the device holds id on its disk. Not Repo.Open: it
// returns a document being stored before the write is done, and a write a
// stop cuts short leaves nothing.
func (d *device) has(id docid.ID) bool {
	_, err := d.st.LoadDoc(id.String())
	return err == nil
}

func (d *device) record(id docid.ID) *record.Record {
	d.t.Helper()
	h, err := d.repo.Open(id)
	if err != nil {
		d.t.Fatal(err)
	}
	r, err := record.Read(h.Doc(), d.currentTrust())
	if err != nil {
		d.t.Fatal(err)
	}
	return r
}

// errorCodes lists the codes of the errors the relay sent, in order.
func (d *device) errorCodes() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.codes...)
}

func (d *device) currentTrust() *cert.Trust {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.trust
}

// certify has the device's editor certified the way a desktop is: a key
// made here, a certificate request sent over the connection, an
// administrator's approval, and the certificate back in a haven-trust
// message. The editor then signs its decisions.
func (d *device) certify(p *relayProc) {
	d.t.Helper()
	pub, priv := cert.NewKey()
	a := d.ed.Author
	req := wire.CertRequest{ID: "req-" + strings.ToLower(strings.ReplaceAll(d.name, " ", "")) + "0001", Staff: a.UserID, Name: a.Name,
		Role: string(a.Role), Registration: a.RegNo, PublicKey: pub}
	req.Proof = ed25519.Sign(priv, req.SigningBytes())
	waitFor(d.t, "the device online to send its request", d.online)
	if !d.client.SendCertRequest(req) {
		d.t.Fatal("certificate request not sent")
	}
	waitFor(d.t, "the relay to hold the request", func() bool { return strings.Contains(p.admin("staff", "list"), req.ID) })
	p.admin("staff", "approve", req.ID)
	// The next trust message carries it: ask by sending the request again.
	var c *cert.Certificate
	waitFor(d.t, "the certificate to arrive", func() bool {
		d.client.SendCertRequest(req)
		d.mu.Lock()
		defer d.mu.Unlock()
		for i := range d.certs {
			if d.certs[i].Staff == a.UserID {
				c = &d.certs[i]
			}
		}
		return c != nil
	})
	d.ed.Signer = record.KeySigner{Cert: c, Key: priv}
	d.ed.Rules.Trust = d.currentTrust()
}

func (d *device) edit(id docid.ID, fn func(doc *crdt.Doc) error) {
	d.t.Helper()
	h, err := d.repo.Open(id)
	if err != nil {
		d.t.Fatal(err)
	}
	if err := h.Change(context.Background(), fn); err != nil {
		d.t.Fatal(err)
	}
	d.client.Changed(id)
}

func (d *device) askUnavailable(id docid.ID) <-chan struct{} {
	ch := make(chan struct{})
	d.mu.Lock()
	d.unavailable[id] = ch
	d.mu.Unlock()
	d.client.Request(id)
	return ch
}

func heads(d *device, id docid.ID) []crdt.Hash {
	h, err := d.repo.Open(id)
	if err != nil {
		return nil
	}
	return h.Doc().Heads()
}

type world struct {
	relay        *relayProc
	homeA, homeB string
	hub          string
}

func setup(t *testing.T) *world {
	t.Helper()
	p := startRelay(t, t.TempDir(), anyPort)
	w := &world{relay: p}
	w.homeA = idRE.FindString(p.admin("create-home", "Larch House"))
	w.homeB = idRE.FindString(p.admin("create-home", "Birch Court"))
	w.hub = idRE.FindString(p.admin("create-hub", "North Hub", "-homes", w.homeA))
	if w.homeA == "" || w.homeB == "" || w.hub == "" {
		t.Fatalf("ids: %q %q %q", w.homeA, w.homeB, w.hub)
	}
	return w
}

func TestCreateFindConvergeAndScope(t *testing.T) {
	w := setup(t)
	a := newDevice(t, "carer-pc", w.relay.enroll(w.homeA, "Larch nurses' station"), w.relay.url())
	hub := newDevice(t, "hub-nurse", w.relay.enroll(w.hub, "Hub laptop"), w.relay.url())
	other := newDevice(t, "birch-pc", w.relay.enroll(w.homeB, "Birch office"), w.relay.url())
	waitFor(t, "devices online", func() bool { return a.online() && hub.online() && other.online() })

	docs := a.newResident(w.homeA, "Marlow")
	waitFor(t, "the relay to confirm the new record", func() bool { return a.client.Synced(docs.RecordID) && a.client.Synced(docs.TimelineID) })

	// The hub covering Larch House finds it.
	hub.client.Request(docs.RecordID)
	waitFor(t, "the hub to receive the record", func() bool { return hub.has(docs.RecordID) })
	if got := hub.record(docs.RecordID).Identity.FamilyName; got != "Marlow" {
		t.Fatalf("hub reads family name %q", got)
	}

	// Concurrent edits on both devices converge.
	a.edit(docs.RecordID, func(doc *crdt.Doc) error {
		id := a.record(docs.RecordID).Identity
		id.Room = "14"
		return a.ed.UpdateIdentity(doc, id)
	})
	hub.certify(w.relay)
	a.certify(w.relay) // to read the hub's signed decision
	hub.edit(docs.RecordID, func(doc *crdt.Doc) error {
		_, err := hub.ed.Decide(doc, record.KindCPR, "", record.CPRNotRecommended, "frailty; discussed with family")
		return err
	})
	waitFor(t, "both copies to converge", func() bool {
		ha, hh := heads(a, docs.RecordID), heads(hub, docs.RecordID)
		return len(ha) > 0 && crdt.SameHeads(ha, hh) && len(ha) == 1 || crdt.SameHeads(ha, hh) && a.client.Synced(docs.RecordID) && hub.client.Synced(docs.RecordID)
	})
	ra, rh := a.record(docs.RecordID), hub.record(docs.RecordID)
	if ra.Identity.Room != "14" || rh.Identity.Room != "14" {
		t.Fatalf("room: a %q, hub %q", ra.Identity.Room, rh.Identity.Room)
	}
	if _, ok := ra.Decision(record.KindCPR, "").Settled(); !ok {
		t.Fatal("the hub's CPR decision did not reach the care home")
	}

	// Out of scope is indistinguishable from missing.
	missing := docid.New()
	select {
	case <-other.askUnavailable(docs.RecordID):
	case <-time.After(10 * time.Second):
		t.Fatal("out-of-scope request got no doc-unavailable")
	}
	select {
	case <-other.askUnavailable(missing):
	case <-time.After(10 * time.Second):
		t.Fatal("request for a missing document got no doc-unavailable")
	}
	if other.has(docs.RecordID) {
		t.Fatal("a device outside the home's scope received its record")
	}
}

func TestReconnectAfterRelayRestartLosesNothing(t *testing.T) {
	data := t.TempDir()
	p := startRelay(t, data, anyPort)
	home := idRE.FindString(p.admin("create-home", "Larch House"))
	a := newDevice(t, "a", p.enroll(home, "PC A"), p.url())
	b := newDevice(t, "b", p.enroll(home, "PC B"), p.url())
	waitFor(t, "online", func() bool { return a.online() && b.online() })
	docs := a.newResident(home, "Marlow")
	waitFor(t, "confirmed", func() bool { return a.client.Synced(docs.RecordID) })
	b.client.Request(docs.RecordID)
	waitFor(t, "b has it", func() bool { return b.has(docs.RecordID) })

	p.stop()
	waitFor(t, "devices to notice the relay is gone", func() bool { return !a.online() && !b.online() })
	// Edits while the relay is down are kept locally and wait.
	a.edit(docs.RecordID, func(doc *crdt.Doc) error {
		id := a.record(docs.RecordID).Identity
		id.Room = "22"
		return a.ed.UpdateIdentity(doc, id)
	})
	if a.client.Status().Pending == 0 {
		t.Fatal("an offline edit is not shown as waiting to be sent")
	}
	startRelay(t, data, p.addr)
	waitFor(t, "b to receive a's offline edit after the restart", func() bool {
		return b.has(docs.RecordID) && b.record(docs.RecordID).Identity.Room == "22"
	})
	waitFor(t, "a's change confirmed", func() bool {
		return a.client.Synced(docs.RecordID) && a.client.Synced(docs.TimelineID)
	})
}

// TestRevokedDeviceRefused: revoking a device cuts off its live
// connections at once (a stolen laptop does not stay connected), each told
// why with a code; the admin command says how many it closed; the device
// is refused at every later connection.
func TestRevokedDeviceRefused(t *testing.T) {
	w := setup(t)
	enr := w.relay.enroll(w.homeA, "Stolen laptop")
	d := newDevice(t, "stolen", enr, w.relay.url())
	twin := newDevice(t, "stolen-twin", enr, w.relay.url()) // the same credential, a second connection
	other := newDevice(t, "other", w.relay.enroll(w.homeA, "Office PC"), w.relay.url())
	waitFor(t, "online", func() bool { return d.online() && twin.online() && other.online() })
	start := time.Now()
	out := w.relay.admin("revoke", enr.Device)
	if !strings.Contains(out, "2 live connections closed") {
		t.Errorf("revoke printed %q; want it to say it closed the device's 2 connections", out)
	}
	var err error
	for _, dev := range []*device{d, twin} {
		select {
		case err = <-dev.runErr:
		case <-time.After(10 * time.Second):
			t.Fatal("the revoked device is still connected")
		}
		dev.runErr <- nil
		if err == nil || !slices.Contains(dev.errorCodes(), wire.CodeDeviceRevoked) {
			t.Fatalf("Run = %v, codes %v; want a refusal with code %s", err, dev.errorCodes(), wire.CodeDeviceRevoked)
		}
	}
	t.Logf("both connections of the revoked device closed %v after the command", time.Since(start).Round(time.Millisecond))
	if !other.online() {
		t.Error("another device of the same home was cut off")
	}
	w.relay.stop()
	startRelay(t, w.relay.data, w.relay.addr)
	again := newDevice(t, "stolen-again", enr, w.relay.url())
	select {
	case err = <-again.runErr:
	case <-time.After(20 * time.Second):
		t.Fatal("revoked device kept retrying")
	}
	again.runErr <- nil
	if err == nil || !slices.Contains(again.errorCodes(), wire.CodeDeviceRevoked) {
		t.Fatalf("Run = %v, codes %v; want a refusal with code %s", err, again.errorCodes(), wire.CodeDeviceRevoked)
	}
	// A device with a wrong credential is refused the same way.
	bad := enr
	bad.Credential = "hvn1_" + strings.Repeat("A", 43)
	d2 := newDevice(t, "forged", bad, w.relay.url())
	select {
	case err = <-d2.runErr:
	case <-time.After(20 * time.Second):
		t.Fatal("forged credential kept retrying")
	}
	d2.runErr <- nil
	if err == nil || !slices.Contains(d2.errorCodes(), wire.CodeNotEnrolled) {
		t.Fatalf("Run = %v, codes %v; want a refusal with code %s", err, d2.errorCodes(), wire.CodeNotEnrolled)
	}
}

func TestHealthMetricsAndSafeListening(t *testing.T) {
	p := startRelay(t, t.TempDir(), anyPort)
	resp, err := http.Get("http://" + p.addr + "/healthz")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("healthz: %v %v", resp, err)
	}
	resp.Body.Close()
	resp, err = http.Get("http://" + p.addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, name := range []string{"haven_relay_connections", "haven_relay_documents", "haven_relay_messages_total", "haven_relay_quarantined_total", "haven_relay_worker_restarts_total", "haven_relay_sync_seconds"} {
		if !strings.Contains(string(body), name) {
			t.Errorf("/metrics lacks %s", name)
		}
	}
	// Plain websockets outside loopback are refused at start.
	err = run(context.Background(), []string{"serve", "-data", t.TempDir(), "-listen", "0.0.0.0:0"}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "tls") {
		t.Fatalf("serving plain on 0.0.0.0 = %v, want a refusal naming TLS", err)
	}
	// A second relay on the same data folder says plainly it is in use.
	err = run(context.Background(), []string{"serve", "-data", p.data, "-listen", anyPort}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), p.data) || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("second relay on the same folder = %v", err)
	}
}

// With a certificate and key the relay serves TLS (and may then listen
// beyond loopback).
func TestServesTLS(t *testing.T) {
	dir := t.TempDir()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "relay.test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	certFile, keyFile := dir+"/cert.pem", dir+"/key.pem"
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)

	r := rig.NewRelay(rig.RelayConfig{Syncd: rig.InProcess(run), Data: t.TempDir(), Listen: anyPort,
		Flags: []string{"-tls-cert", certFile, "-tls-key", keyFile, "-workers", "1"}})
	if err := r.Start(); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(r.URL(), "wss://") {
		t.Fatalf("syncd serves %s, want a wss:// address", r.URL())
	}
	pool := x509.NewCertPool()
	pool.AddCert(mustParse(t, der))
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := c.Get(r.HTTP() + "/healthz")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("https healthz: %v %v", resp, err)
	}
	resp.Body.Close()
	if err := r.Stop(); err != nil {
		t.Fatal(err)
	}
}

func mustParse(t *testing.T, der []byte) *x509.Certificate {
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// A relay at its connection limit turns devices away for now; they keep
// trying and get in when a place frees up (a refusal they cannot cure, such
// as revocation, stops them instead: TestRevokedDeviceRefused).
func TestConnectionCapTurnsAwayForNow(t *testing.T) {
	p := startRelay(t, t.TempDir(), anyPort, "-max-conns", "1")
	home := idRE.FindString(p.admin("create-home", "Larch House"))
	first := newDevice(t, "first", p.enroll(home, "PC 1"), p.url())
	waitFor(t, "the first device online", first.online)
	second := newDevice(t, "second", p.enroll(home, "PC 2"), p.url())
	waitFor(t, "the second device to be told the relay is full", func() bool {
		return slices.ContainsFunc(second.errorCodes(), func(code string) bool { return rig.Classify(code) == rig.ClassBusy })
	})
	select {
	case err := <-second.runErr:
		t.Fatalf("the refused device gave up: %v", err)
	default:
	}
	first.cancel() // a place frees up
	waitFor(t, "the second device to get in", second.online)
}

// TestHubRemovedFromAHomeHearsNoMore: when a hub stops covering a home, its
// live connection is cut back at once: the admin command says so, a change
// to the home's record made afterwards never reaches the hub, and the
// hub's own change to the record is refused as out of scope and goes
// nowhere.
// homeAndHubHolding is a relay with a home's computer and its hub's laptop
// online, both holding a record the home made.
func homeAndHubHolding(t *testing.T) (*world, *device, *device, record.NewDocs) {
	t.Helper()
	w := setup(t)
	home := newDevice(t, "home-pc", w.relay.enroll(w.homeA, "Nurses' station"), w.relay.url())
	hub := newDevice(t, "hub-laptop", w.relay.enroll(w.hub, "Hub laptop"), w.relay.url())
	waitFor(t, "online", func() bool { return home.online() && hub.online() })
	docs := home.newResident(w.homeA, "Marlow")
	waitFor(t, "the relay to hold the record", func() bool { return home.client.Synced(docs.RecordID) })
	hub.client.Request(docs.RecordID)
	waitFor(t, "the hub to hold the record", func() bool { return hub.has(docs.RecordID) })
	return w, home, hub, docs
}

func TestHubRemovedFromAHomeHearsNoMore(t *testing.T) {
	w, home, hub, docs := homeAndHubHolding(t)

	out := w.relay.admin("set-hub-homes", w.hub, "-homes", "")
	if !strings.Contains(out, "1 live connections lost access") {
		t.Errorf("set-hub-homes printed %q; want it to say the hub's connection lost access", out)
	}
	cutOff(t, home, hub, docs.RecordID)
}

// cutOff checks that the hub hears nothing more of a record the home goes
// on changing, and that the hub's change to it is refused as out of its
// scope and reaches nobody.
func cutOff(t *testing.T, home, hub *device, id docid.ID) {
	t.Helper()
	home.edit(id, func(doc *crdt.Doc) error {
		ident := home.record(id).Identity
		ident.Room = "22"
		return home.ed.UpdateIdentity(doc, ident)
	})
	waitFor(t, "the relay to confirm the home's change", func() bool { return home.client.Synced(id) })
	hub.edit(id, func(doc *crdt.Doc) error {
		_, err := hub.ed.AddAlert(doc, record.Alert{Text: "from a hub that may no longer hold the record"})
		return err
	})
	waitFor(t, "the relay to refuse the hub's change as out of scope", func() bool {
		return slices.Contains(hub.errorCodes(), wire.CodeOutOfScope)
	})
	if room := hub.record(id).Identity.Room; room == "22" {
		t.Fatal("the home's change reached the hub")
	}
	if len(home.record(id).Alerts) != 0 {
		t.Fatal("the hub's change reached the home")
	}
}

// TestWithdrawnConsentKeepsTheRecordAtHome: when a person withdraws consent
// to share their record beyond their home, the hub covering the home lets
// its copies of the record and its timeline go: at once when connected, at
// its next connection when away (a change it made meanwhile is refused and
// reaches nobody). Nothing re-creates them while the home goes on; when
// consent is given again, the hub's next listing brings the record back
// with the home's changes.
func TestWithdrawnConsentKeepsTheRecordAtHome(t *testing.T) {
	w, home, hub, docs := homeAndHubHolding(t)
	awayEnr := w.relay.enroll(w.hub, "Hub desk")
	away := newDevice(t, "hub-desk", awayEnr, w.relay.url())
	both := []docid.ID{docs.RecordID, docs.TimelineID}
	waitFor(t, "the second hub device online", away.online)
	for _, d := range []*device{hub, away} {
		for _, id := range both {
			d.client.Request(id)
		}
	}
	waitFor(t, "both hub devices to hold the record and its timeline", func() bool {
		return hub.has(docs.RecordID) && hub.has(docs.TimelineID) && away.has(docs.RecordID) && away.has(docs.TimelineID)
	})
	away.stop()
	away.edit(docs.RecordID, func(doc *crdt.Doc) error {
		_, err := away.ed.AddAlert(doc, record.Alert{Text: "written offline by a hub that may no longer hold the record"})
		return err
	})

	setConsent := func(withdrawn bool, room string) {
		t.Helper()
		home.edit(docs.RecordID, func(doc *crdt.Doc) error {
			id := home.record(docs.RecordID).Identity
			id.ConsentWithdrawn, id.Room = withdrawn, room
			return home.ed.UpdateIdentity(doc, id)
		})
		waitFor(t, "the relay to confirm the home's change", func() bool { return home.client.Synced(docs.RecordID) })
	}
	setConsent(true, "12")
	waitFor(t, "the connected hub device to let the record and its timeline go", func() bool {
		return !hub.has(docs.RecordID) && !hub.has(docs.TimelineID)
	})
	for _, id := range both {
		if code := hub.letGo.code(id); code != wire.CodeNotShared {
			t.Errorf("the hub let %s go with code %q; want %q", id, code, wire.CodeNotShared)
		}
	}

	// The home goes on; the hub does not ask again, and nothing arrives.
	setConsent(true, "22")
	hub.client.Request(docs.RecordID)
	<-hub.askUnavailable(docid.New()) // answered after all before it
	if hub.has(docs.RecordID) || hub.has(docs.TimelineID) {
		t.Fatal("a copy of the record came back to the hub while consent is withdrawn")
	}

	// The device that was away offers its copy, changed, and lets it go.
	away.start(awayEnr, w.relay.url())
	waitFor(t, "the device that was away to let the record and its timeline go at its next connection", func() bool {
		return !away.has(docs.RecordID) && !away.has(docs.TimelineID)
	})
	<-away.askUnavailable(docid.New())
	<-home.askUnavailable(docid.New())
	if n := len(home.record(docs.RecordID).Alerts); n != 0 {
		t.Fatalf("the home's record has %d alerts: the away device's change got through", n)
	}

	setConsent(false, "23")
	// The relay settles the record's sharing from the change just after
	// it confirms it to the home, so a listing at that very moment may not
	// show it yet: the hub lists again until it does, as its next
	// connection would.
	waitFor(t, "the hub to have the record again, with the home's changes", func() bool {
		if !hub.has(docs.RecordID) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if _, err := hub.client.Bootstrap(ctx, nil); err != nil {
				t.Logf("listing: %v", err)
			}
		}
		return hub.has(docs.RecordID) && hub.record(docs.RecordID).Identity.Room == "23"
	})
	if hub.letGo.Marked(docs.RecordID) {
		t.Error("the record listed again is still marked let go")
	}
}
