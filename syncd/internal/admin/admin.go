// Package admin is syncd's administration: creating organisations, enrolling
// and revoking devices, reading the audit log. The same commands run against
// the data folder directly when the relay is stopped, or inside the running
// relay through its admin socket (the store allows one process per folder).
package admin

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"haven/shared/crdt"
	"haven/shared/docid"
	"haven/shared/nhs"
	"haven/shared/record"
	"haven/shared/repo"
	"haven/shared/store"
	"haven/syncd/internal/orgs"
	"haven/syncd/internal/relay"
)

// Admin runs commands against one relay's store.
type Admin struct {
	Store *store.Store
	Orgs  *orgs.Registry
	// OnDocument is told about documents admin creates (a home's
	// directory), so a running relay serves them at once. May be nil.
	OnDocument func(doc, owner string) error
	// OnRevoke and OnScopes apply a revocation and a change of what an
	// organisation covers to the running relay's live connections, and
	// say how many connections they closed or cut back. Nil when the
	// relay is not running (it applies them at each next connection).
	OnRevoke func(device string) int
	OnScopes func() int
	// OnServices has the running relay make the region's directory of
	// services doc hold exactly list, through its workers, and says how
	// many services it wrote and removed. Nil when the relay is not
	// running (LoadServices then writes the store itself).
	OnServices func(ctx context.Context, doc string, list []record.Service) (written, removed int, err error)
}

// Usage lists the commands.
const Usage = `syncd admin commands:
  orgs                                   list organisations
  create-home NAME [-ods CODE] [-postcode PC -borough NAME]
                                         add a care home (and its directory document); its postcode
                                         and borough choose the services its front sheets list
  create-hub NAME -homes ID,ID,...       add a GP hub covering those homes
  set-hub-homes HUB-ID -homes ID,ID,...  change the homes a hub covers
  create-advice-line NAME                add the advice line
  enroll ORG-ID -name "Nurses' station PC" [-ttl 24h]
                                         enrol a device; prints its one-time code
  devices [ORG-ID]                       list devices
  revoke DEVICE-ID                       revoke a device (its live connections are closed at once)
  audit [-org ORG-ID] [-after N] [-json] print audit events (for the IG lead)
  audit -unreviewed [-org ORG-ID]        break-glass accesses no IG lead has reviewed yet
  audit -verify                          check the audit log's hash chain; prints its head
  review SEQ -by NAME [-note TEXT]       record the IG lead's review of a break-glass access
  staff list [-org ORG-ID]               staff certificate requests (pending first) and certificates
  staff approve REQUEST-ID               grant a request once you have checked the person and their registration
  staff refuse REQUEST-ID -note REASON   refuse a request (the manager sees the reason)
  staff add -org ORG-ID -name NAME -role ROLE [-reg "GMC 7000001"]
                                         pre-approve a person: their desktop's request is granted at once
  staff revoke CERT-ID                   revoke a certificate (a leaver): what it signed before stays valid
  services-load FILE.csv [-region NAME]  make the directory of services hold exactly the file's services
                                         (a file with any bad row is refused whole; see README)`

// Run executes one command, writing what a person reads to out.
func (a *Admin) Run(ctx context.Context, args []string, out io.Writer) error {
	if len(args) == 0 {
		return errors.New(Usage)
	}
	cmd, rest := args[0], args[1:]
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	ods := fs.String("ods", "", "ODS code")
	homes := fs.String("homes", "", "comma-separated home IDs")
	name := fs.String("name", "", "device name")
	ttl := fs.Duration("ttl", orgs.DefaultCodeTTL, "how long the one-time code is valid")
	orgFilter := fs.String("org", "", "organisation")
	after := fs.Uint64("after", 0, "audit sequence to start after")
	unreviewed := fs.Bool("unreviewed", false, "only break-glass accesses awaiting review")
	verify := fs.Bool("verify", false, "check the audit log's hash chain")
	asJSON := fs.Bool("json", false, "print audit events as JSON, one per line")
	reviewer := fs.String("by", "", "who reviewed")
	note := fs.String("note", "", "review note")
	role := fs.String("role", "", "staff role")
	reg := fs.String("reg", "", "professional registration")
	region := fs.String("region", "", "the region's name, for a new directory of services")
	postcode := fs.String("postcode", "", "a care home's postcode")
	borough := fs.String("borough", "", "a care home's borough")
	// Positional arguments come first (NAME, IDs), flags after.
	var pos []string
	for len(rest) > 0 && !strings.HasPrefix(rest[0], "-") {
		pos, rest = append(pos, rest[0]), rest[1:]
	}
	if err := fs.Parse(rest); err != nil {
		return fmt.Errorf("%s: %v\n%s", cmd, err, Usage)
	}
	pos = append(pos, fs.Args()...)
	need := func(n int, what string) error {
		if len(pos) != n {
			return fmt.Errorf("%s needs %s\n%s", cmd, what, Usage)
		}
		return nil
	}
	switch cmd {
	case "orgs":
		return a.listOrgs(out)
	case "create-home":
		if err := need(1, "a NAME"); err != nil {
			return err
		}
		area := record.HomeArea{Postcode: *postcode, Borough: *borough}
		if err := record.ValidateHomeArea(area); err != nil {
			return err
		}
		o, err := a.Orgs.CreateHome(ctx, pos[0], *ods)
		if err != nil {
			return err
		}
		dir, err := a.CreateDirectory(ctx, o, area)
		if err != nil {
			return fmt.Errorf("home %s created, but its directory failed: %w", o.ID, err)
		}
		fmt.Fprintf(out, "care home %s created: %s (directory %s)\n", o.ID, o.Name, dir)
	case "create-hub":
		if err := need(1, "a NAME"); err != nil {
			return err
		}
		o, err := a.Orgs.CreateHub(ctx, pos[0], splitIDs(*homes))
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "GP hub %s created: %s, covering %s\n", o.ID, o.Name, strings.Join(o.Homes, ", "))
	case "set-hub-homes":
		if err := need(1, "a HUB-ID"); err != nil {
			return err
		}
		if err := a.Orgs.SetHubHomes(ctx, pos[0], splitIDs(*homes)); err != nil {
			return err
		}
		fmt.Fprintf(out, "hub %s now covers %s\n", pos[0], *homes)
		if a.OnScopes != nil {
			fmt.Fprintf(out, "%d live connections lost access to documents\n", a.OnScopes())
		}
	case "create-advice-line":
		if err := need(1, "a NAME"); err != nil {
			return err
		}
		o, err := a.Orgs.CreateAdviceLine(ctx, pos[0])
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "advice line %s created: %s\n", o.ID, o.Name)
	case "enroll":
		if err := need(1, "an ORG-ID"); err != nil {
			return err
		}
		d, code, err := a.Orgs.EnrollDevice(ctx, pos[0], *name, *ttl)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "device %s (%s) for %s\none-time code: %s (valid until %s)\n",
			d.ID, d.Name, d.Org, code, d.CodeExpires.Local().Format("2 Jan 2006 15:04"))
	case "devices":
		org := ""
		if len(pos) > 0 {
			org = pos[0]
		}
		return a.listDevices(out, org)
	case "revoke":
		if err := need(1, "a DEVICE-ID"); err != nil {
			return err
		}
		if err := a.Orgs.Revoke(ctx, pos[0]); err != nil {
			return err
		}
		fmt.Fprintf(out, "device %s revoked\n", pos[0])
		if a.OnRevoke != nil {
			fmt.Fprintf(out, "%d live connections closed\n", a.OnRevoke(pos[0]))
		} else {
			fmt.Fprintln(out, "the relay is not running: the device is refused at its next connection")
		}
	case "audit":
		switch {
		case *verify:
			n, head, err := a.Orgs.VerifyAudit()
			if err != nil {
				return fmt.Errorf("audit log NOT intact after event %d: %w", n, err)
			}
			fmt.Fprintf(out, "audit log intact: %d events, chain head %s\n", n, head)
			return nil
		case *unreviewed:
			list, err := a.Orgs.Unreviewed(*orgFilter)
			if err != nil {
				return err
			}
			for _, p := range list {
				e := p.Event.Printable()
				fmt.Fprintf(out, "%d\t%s\t%s\t%s\t%s\t%s\treason: %s\n", p.Seq, e.Received.UTC().Format(time.RFC3339), e.Device, staffOf(e), e.Role, e.Resident, e.Detail)
			}
			fmt.Fprintf(out, "%d break-glass accesses await review\n", len(list))
			return nil
		}
		if !*asJSON {
			fmt.Fprintln(out, "seq\treceived\tdevice time\tdevice\tstaff\trole\taction\tresident\tdoubts")
		}
		enc := json.NewEncoder(out)
		return a.Orgs.AuditLog(*after, func(seq uint64, e orgs.AuditEvent) error {
			if *orgFilter != "" && e.Owner != *orgFilter && e.Org != *orgFilter {
				return nil
			}
			if *asJSON {
				return enc.Encode(AuditLine{Seq: seq, Event: e})
			}
			e = e.Printable()
			fmt.Fprintf(out, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", seq, e.Received.UTC().Format(time.RFC3339), e.Time.UTC().Format(time.RFC3339),
				e.Device, staffOf(e), e.Role, e.Action, e.Resident, strings.Join(e.Doubts, ","))
			return nil
		})
	case "review":
		if err := need(1, "an audit SEQ"); err != nil {
			return err
		}
		var seq uint64
		if _, err := fmt.Sscan(pos[0], &seq); err != nil {
			return fmt.Errorf("review: %q is not an audit sequence number", pos[0])
		}
		if err := a.Orgs.ReviewBreakGlass(ctx, seq, *reviewer, *note); err != nil {
			return err
		}
		fmt.Fprintf(out, "break-glass access %d reviewed by %s\n", seq, *reviewer)
	case "services-load":
		if err := need(1, "a FILE.csv"); err != nil {
			return err
		}
		return a.servicesLoadFile(ctx, out, pos[0], *region)
	case "staff":
		if len(pos) == 0 {
			return fmt.Errorf("staff needs list, approve, refuse, add or revoke\n%s", Usage)
		}
		return a.staff(ctx, out, pos[0], pos[1:], *orgFilter, *name, *role, *reg, *note)
	default:
		return fmt.Errorf("unknown command %q\n%s", cmd, Usage)
	}
	return nil
}

// AuditLine is one line of audit -json.
type AuditLine struct {
	Seq   uint64          `json:"seq"`
	Event orgs.AuditEvent `json:"event"`
}

// staffOf names the member of staff of an event: the certified name and
// ID, or what the device claimed, marked as such.
func staffOf(e orgs.AuditEvent) string {
	switch {
	case e.User != "":
		return e.Name + " (" + e.User + ")"
	case e.Claimed != "":
		return "unverified: " + e.Claimed
	}
	return "-"
}

// staff runs the staff certificate commands.
func (a *Admin) staff(ctx context.Context, out io.Writer, sub string, pos []string, org, name, role, reg, note string) error {
	one := func(what string) error {
		if len(pos) != 1 {
			return fmt.Errorf("staff %s needs %s\n%s", sub, what, Usage)
		}
		return nil
	}
	switch sub {
	case "list":
		return a.listStaff(out, org)
	case "approve":
		if err := one("a REQUEST-ID"); err != nil {
			return err
		}
		c, err := a.Orgs.ApproveRequest(ctx, pos[0])
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "certificate %s issued to %s (%s%s), valid until %s\n", c.ID, c.Name, c.Role, regSuffix(c.Registration),
			c.ValidUntil.Local().Format("2 Jan 2006"))
	case "refuse":
		if err := one("a REQUEST-ID"); err != nil {
			return err
		}
		if err := a.Orgs.RefuseRequest(ctx, pos[0], note); err != nil {
			return err
		}
		fmt.Fprintf(out, "request %s refused\n", pos[0])
	case "add":
		if err := a.Orgs.PreapproveStaff(ctx, org, name, role, reg); err != nil {
			return err
		}
		fmt.Fprintf(out, "%s (%s) of %s pre-approved: their desktop's certificate request will be granted at once\n", name, role, org)
	case "revoke":
		if err := one("a CERT-ID"); err != nil {
			return err
		}
		rv, err := a.Orgs.RevokeCertificate(ctx, pos[0])
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "certificate %s revoked from %s: what it signed before stays valid, nothing after\n", rv.Cert, rv.At.Local().Format("2 Jan 2006 15:04:05"))
	default:
		return fmt.Errorf("unknown staff command %q\n%s", sub, Usage)
	}
	return nil
}

func regSuffix(reg string) string {
	if reg == "" {
		return ""
	}
	return ", " + reg
}

func (a *Admin) listStaff(out io.Writer, org string) error {
	reqs, err := a.Orgs.StaffRequests(org)
	if err != nil {
		return err
	}
	certs, err := a.Orgs.Certificates(org)
	if err != nil {
		return err
	}
	revs, err := a.Orgs.Revocations()
	if err != nil {
		return err
	}
	revoked := map[string]time.Time{}
	for _, r := range revs {
		revoked[r.Cert] = r.At
	}
	tw := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "REQUEST\tSTATE\tORG\tNAME\tROLE\tREGISTRATION\tRECEIVED")
	for _, r := range reqs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.State, r.Org, r.Name, r.Role, r.Registration, r.Received.Local().Format("2006-01-02 15:04"))
	}
	fmt.Fprintln(tw, "\nCERTIFICATE\tSTATUS\tORG\tNAME\tROLE\tREGISTRATION\tVALID UNTIL")
	for _, c := range certs {
		status := "valid"
		if at, ok := revoked[c.ID]; ok {
			status = "revoked " + at.Local().Format("2006-01-02")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", c.ID, status, c.Org, c.Name, c.Role, c.Registration, c.ValidUntil.Local().Format("2006-01-02"))
	}
	return tw.Flush()
}

func splitIDs(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func (a *Admin) listOrgs(out io.Writer) error {
	list, err := a.Orgs.Orgs()
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tKIND\tNAME\tCOVERS / DIRECTORY")
	for _, o := range list {
		extra := o.Directory
		if o.Kind == orgs.KindHub {
			extra = strings.Join(o.Homes, ",")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", o.ID, o.Kind, o.Name, extra)
	}
	return tw.Flush()
}

func (a *Admin) listDevices(out io.Writer, org string) error {
	list, err := a.Orgs.Devices(org)
	if err != nil {
		return err
	}
	now := time.Now()
	tw := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tORG\tNAME\tSTATUS\tLAST SEEN")
	for _, d := range list {
		seen := "never"
		if !d.LastSeen.IsZero() {
			seen = d.LastSeen.Local().Format("2006-01-02 15:04")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", d.ID, d.Org, d.Name, d.Status(now), seen)
	}
	return tw.Flush()
}

// CreateDirectory makes a care home's directory document, with the home's
// area if known, records the home as its owner, and links it to the home.
func (a *Admin) CreateDirectory(ctx context.Context, home orgs.Org, area record.HomeArea) (string, error) {
	if home.Directory != "" {
		return home.Directory, nil
	}
	ed, err := RelayEditor()
	if err != nil {
		return "", err
	}
	doc, id, err := ed.NewDirectory(home.ID, home.Name)
	if err != nil {
		return "", err
	}
	if area.Known() {
		if err := ed.SetHomeArea(doc, area); err != nil {
			return "", err
		}
	}
	if err := a.StoreDocument(ctx, id, doc, home.ID); err != nil {
		return "", err
	}
	if err := a.Orgs.SetDirectory(ctx, home.ID, id.String()); err != nil {
		return "", err
	}
	return id.String(), nil
}

// RelayEditor writes what the relay's administrator makes: a home's
// directory, the directory of services.
func RelayEditor() (*record.Editor, error) {
	return record.NewEditor(record.RelayAuthor, record.Rules{NHS: nhs.Live})
}

// UnsharedNamespace marks the documents the relay's administrator stored
// or changed with the relay stopped (syncd demo, services-load, a home's
// directory): document ID → owner. No other node of a cluster has heard of
// them; the next syncd serve sends each to the cluster and clears its mark.
const UnsharedNamespace = "docs-unshared"

// markUnshared marks a document stored or changed with no relay running
// (see UnsharedNamespace).
func (a *Admin) markUnshared(ctx context.Context, id docid.ID, owner string) error {
	return a.Store.Put(ctx, UnsharedNamespace, id.String(), []byte(owner))
}

// StoreDocument stores a document the relay itself made (trusted content)
// and records its owner, telling a running relay, or else marking it for
// the relay to share when it next starts.
func (a *Admin) StoreDocument(ctx context.Context, id docid.ID, doc *crdt.Doc, owner string) error {
	if err := a.Store.Put(ctx, relay.OwnerNamespace, id.String(), []byte(owner)); err != nil {
		return err
	}
	r := repo.New(a.Store, repo.Options{})
	defer r.Close()
	if _, err := r.Create(ctx, id, doc); err != nil {
		return err
	}
	if t, _, _ := doc.Get("type"); t == record.TypeResident {
		if err := relay.IndexPerson(ctx, a.Store, id, record.NHSNumberOf(doc)); err != nil {
			return err
		}
	}
	if a.OnDocument != nil {
		return a.OnDocument(id.String(), owner)
	}
	return a.markUnshared(ctx, id, owner)
}
