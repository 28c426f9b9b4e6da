package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"haven/shared/crdt"
	"haven/shared/docid"
	"haven/shared/record"
	"haven/shared/wire"
	"haven/syncd/internal/orgs"
)

// The registry is the cluster's: what an administrator or a device changes
// through one node applies on every node within a second. These tests start
// every node on an empty data folder; only the organisation signing key is
// given to each.

// A device enrolled through node A's admin is listed by node B, redeems its
// code at node B, connects there, and gets its home's directory, which
// node A's admin made with the home.
func TestDeviceEnrolledOnOneNodeConnectsToAnother(t *testing.T) {
	home, _, nodes := startCluster(t)
	began := time.Now()
	dev, code := nodes[0].enrollCode(home, "Larch office")
	waitFor(t, "node B to list the device enrolled through node A", func() bool {
		// Until node B has the home, it answers that there is none.
		out, err := nodes[1].r.Admin("devices", home)
		return err == nil && strings.Contains(out, dev)
	})
	t.Logf("enrolled through node A's admin; node B listed the device %v after the command began", time.Since(began).Round(time.Millisecond))
	enr, status := nodes[1].redeem(code)
	if status != http.StatusOK || enr.Device != dev {
		t.Fatalf("redeeming at node B a code node A issued: status %d, device %q; want %d, %s", status, enr.Device, http.StatusOK, dev)
	}
	d := newDevice(t, "carer", enr, nodes[1].url())
	waitOnline(t, d)
	dir, err := docid.Parse(idOf(t, nodes[0].admin("orgs"), home))
	if err != nil {
		t.Fatal(err)
	}
	d.client.Request(dir)
	waitFor(t, "node B to serve the home's directory node A made", func() bool { return d.has(dir) })
}

// A one-time code redeemed through node A is refused by node B, and of two
// nodes offered one code at the same moment, one takes it.
func TestOneTimeCodeRedeemsOnceInTheCluster(t *testing.T) {
	home, _, nodes := startCluster(t)
	_, code := nodes[0].enrollCode(home, "Larch office")
	if _, status := nodes[0].redeem(code); status != http.StatusOK {
		t.Fatalf("redeeming at node A: status %d", status)
	}
	if enr, status := nodes[1].redeem(code); status != http.StatusForbidden {
		t.Fatalf("node B took a code node A redeemed: status %d, device %q; want %d", status, enr.Device, http.StatusForbidden)
	}

	_, code = nodes[0].enrollCode(home, "Larch lounge")
	statuses := make([]int, 2)
	var wg sync.WaitGroup
	for i, n := range nodes[1:] {
		wg.Go(func() { _, statuses[i] = n.redeem(code) })
	}
	wg.Wait()
	slices.Sort(statuses)
	if want := []int{http.StatusOK, http.StatusForbidden}; !slices.Equal(statuses, want) {
		t.Fatalf("nodes B and C offered one code at once answered %v, want %v", statuses, want)
	}
}

// A staff certificate revoked through node B's admin reaches the device on
// node A at once, and node A refuses a decision it signs after.
func TestStaffCertificateRevokedOnOneNodeIsRefusedOnAnother(t *testing.T) {
	home, enrs, nodes := startCluster(t, "Nurses' station")
	gp := newDevice(t, "gp-pc", enrs[0], nodes[0].url())
	waitOnline(t, gp)
	gp.certify(nodes[2]) // the request goes through node A, node C approves it
	docs := gp.newResident(home, "Marlow")
	decide := func(v string) {
		gp.edit(docs.RecordID, func(doc *crdt.Doc) error {
			_, err := gp.ed.Decide(doc, record.KindCPR, "", v, "discussed with the resident and her daughter")
			return err
		})
	}
	decide(record.CPRRecommended)
	waitFor(t, "node A to hold the decision", func() bool { return gp.client.Synced(docs.RecordID) })

	c := gp.ed.Signer.(record.KeySigner).Cert
	began := time.Now()
	nodes[1].admin("staff", "revoke", c.ID)
	waitFor(t, "node A to tell its device of the revocation made on node B", func() bool {
		_, ok := gp.currentTrust().RevokedAt(c.ID)
		return ok
	})
	took := time.Since(began)
	t.Logf("certificate revoked through node B's admin; node A told its device %v after the command began", took.Round(time.Millisecond))
	if took > time.Second {
		t.Errorf("node A heard of the revocation %v after it was made, want within 1s", took)
	}
	decide(record.CPRNotRecommended)
	want := wire.RuleCode(record.RuleDecisionUnver, "certificate-revoked")
	waitFor(t, "node A to refuse a decision signed with the revoked certificate", func() bool {
		return slices.Contains(gp.errorCodes(), want)
	})
}

// breakGlassSeq is the number of the break-glass access with reason in
// node n's audit log, or 0.
func breakGlassSeq(t *testing.T, n *relayProc, reason string) uint64 {
	for _, e := range auditLog(t, n) {
		if e.Action == orgs.ActionBreakGlass && e.ByRelay && e.Detail == reason {
			return e.ClusterSeq
		}
	}
	return 0
}

// A break-glass access recorded on node A is listed by `syncd admin audit`
// on node C, under the same number; an IG lead signed in on node C finds it
// awaiting review and reviews it, and then finds nothing awaiting review
// through node B. Each node's own chain verifies.
func TestBreakGlassOnOneNodeIsAuditedAndReviewedOnAnother(t *testing.T) {
	home, enrs, nodes := startCluster(t, "Larch nurses' station")
	line := idRE.FindString(nodes[0].admin("create-advice-line", "Night Line"))
	adviceEnr := nodes[0].enroll(line, "Advice desk 1")
	igEnr := nodes[0].enroll(line, "Governance office")
	larch := newDevice(t, "larch-pc", enrs[0], nodes[0].url())
	advice := newDevice(t, "advice-desk", adviceEnr, nodes[0].url())
	ig := newDevice(t, "ig-office", igEnr, nodes[2].url())
	ig.ed.Author.Role, ig.ed.Author.RegNo = record.IGLead, ""
	waitOnline(t, larch, advice, ig)
	marlow := larch.newResident(home, "Marlow")
	waitFor(t, "node A to hold the record", func() bool { return larch.client.Synced(marlow.RecordID) })
	advice.certify(nodes[1])
	ig.certify(nodes[1])

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	reason := "Call from Larch House: found on the floor at 02:40"
	if _, err := advice.client.Open(ctx, wire.OpenRequest{ID: "o1", Claim: advice.claim(adviceEnr, wire.ActionBreakGlass, marlow.RecordID.String(), reason)}); err != nil {
		t.Fatalf("break-glass opening through node A: %v", err)
	}
	began := time.Now()
	var seq uint64
	waitFor(t, "node C's audit to list the access made through node A", func() bool {
		seq = breakGlassSeq(t, nodes[2], reason)
		return seq != 0
	})
	t.Logf("break-glass access recorded on node A; node C's audit listed it %v later", time.Since(began).Round(time.Millisecond))
	if onA := breakGlassSeq(t, nodes[0], reason); onA != seq {
		t.Fatalf("the access is %d in node A's audit and %d in node C's: one event, one number", onA, seq)
	}

	list, err := ig.client.Review(ctx, wire.ReviewRequest{ID: "r1", Claim: ig.claim(igEnr, wire.ActionReviewList, "", "")})
	if err != nil || len(list.Pending) != 1 || list.Pending[0].Seq != seq || list.Pending[0].Reason != reason {
		t.Fatalf("node C's review list: %+v, %v; want the access %d made through node A", list, err, seq)
	}
	list, err = ig.client.Review(ctx, wire.ReviewRequest{ID: "r2", Seq: seq, Claim: ig.claim(igEnr, wire.ActionReview, "", "call logged on the advice line at 02:41")})
	if err != nil || len(list.Pending) != 0 {
		t.Fatalf("after the review on node C: %+v, %v", list, err)
	}
	ig.stop()
	ig.start(igEnr, nodes[1].url())
	waitOnline(t, ig)
	waitFor(t, "node B to hold the review made on node C", func() bool {
		list, err := ig.client.Review(ctx, wire.ReviewRequest{ID: "r3", Claim: ig.claim(igEnr, wire.ActionReviewList, "", "")})
		return err == nil && len(list.Pending) == 0
	})
	for _, n := range nodes {
		n.admin("audit", "-verify") // an error fails the test
	}
}

// A node started on an empty data folder, after a device was enrolled and
// another revoked, learns both from the cluster before it serves: it
// serves the one and refuses the other.
func TestNodeStartedEmptyKnowsTheRegistry(t *testing.T) {
	_, enrs, c, nodes := startClusterOf(t, "Larch office", "Stolen laptop")
	nodes[1].admin("revoke", enrs[1].Device)
	late := addNode(t, c, nil)
	d := newDevice(t, "carer", enrs[0], late.url())
	stolen := newDevice(t, "thief", enrs[1], late.url())
	waitOnline(t, d)
	waitFor(t, "the new node to refuse the device revoked before it started", func() bool {
		return slices.Contains(stolen.errorCodes(), wire.CodeDeviceRevoked)
	})
}

// A hub made through node B's admin covers a home made through node A's:
// its laptop on node C holds the home's record. Taken off the home through
// node A's admin, the hub is cut back on its open connection to node C:
// it hears nothing more of the record, and its change to it is refused.
func TestHubUnlinkedOnOneNodeIsCutOffOnAnother(t *testing.T) {
	home, enrs, nodes := startCluster(t, "Nurses' station")
	hub := idRE.FindString(nodes[1].admin("create-hub", "North Hub", "-homes", home))
	hubEnr := nodes[1].enroll(hub, "Hub laptop")
	larch := newDevice(t, "home-pc", enrs[0], nodes[0].url())
	laptop := newDevice(t, "hub-laptop", hubEnr, nodes[2].url())
	waitOnline(t, larch, laptop)
	docs := larch.newResident(home, "Marlow")
	waitFor(t, "node A to hold the record", func() bool { return larch.client.Synced(docs.RecordID) })
	laptop.client.Request(docs.RecordID)
	waitFor(t, "the hub's laptop on node C to hold the home's record", func() bool { return laptop.has(docs.RecordID) })

	nodes[0].admin("set-hub-homes", hub, "-homes", "")
	waitFor(t, "node C to hold the hub's homes as node A left them", func() bool {
		for _, line := range strings.Split(nodes[2].admin("orgs"), "\n") {
			if f := strings.Fields(line); len(f) > 0 && f[0] == hub {
				return !strings.Contains(line, home)
			}
		}
		return false
	})
	cutOff(t, larch, laptop, docs.RecordID)
}

// Documents the administrator stores with the relay stopped (syncd demo:
// a home's directory, 40 residents' records and timelines, the region's
// services) reach the cluster when that node next starts: a device of the
// demo home on another node, which never had a copy of the folder, lists
// and downloads every one of them.
func TestDocumentsStoredWithTheRelayStoppedReachTheCluster(t *testing.T) {
	cfg := clusterConfig(3)
	cfg.Nodes[0].Data = filepath.Join(t.TempDir(), "data")
	var out bytes.Buffer
	if err := run(context.Background(), []string{"demo", "-data", cfg.Nodes[0].Data}, &out, io.Discard); err != nil {
		t.Fatalf("syncd demo with the relay stopped: %v", err)
	}
	home := regexp.MustCompile(`home=(\S+)`).FindStringSubmatch(out.String())
	if home == nil {
		t.Fatalf("syncd demo printed %q", out.String())
	}
	_, nodes := startNodes(t, cfg)
	d := newDevice(t, "carer", nodes[1].enroll(home[1], "Office"), nodes[1].url())
	waitOnline(t, d)
	held := func() int {
		ids, err := d.st.Docs()
		if err != nil {
			t.Fatal(err)
		}
		return len(ids)
	}
	// Listed again until all are there: node B applies the cluster's
	// stream a moment after node A sent it.
	fetched, have := 0, 0
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("the device's last listing fetched %d documents; it held %d of %d", fetched, have, 1+2*demoResidents)
		}
	})
	waitFor(t, "the device on node B to hold the demo home's directory and every resident's record and timeline", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		var err error
		if fetched, err = d.client.Bootstrap(ctx, nil); err != nil {
			t.Logf("listing: %v", err)
		}
		have = held()
		return have >= 1+2*demoResidents
	})
}
