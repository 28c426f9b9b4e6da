package orgs

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"haven/shared/store"
)

// TestSecretsNotStored: neither the enrolment code (in any form) nor the credential is kept:
// not in any value or key the registry writes (checked through the store, so encryption at
// rest cannot hide a mistake), and not in any file of the data folder after Close. The hash
// of the credential is there, which shows the search looks in the right place.
func TestSecretsNotStored(t *testing.T) {
	dir := t.TempDir()
	key := bytes.Repeat([]byte{0x5a}, 32)
	st, err := store.Open(dir, store.Options{Key: key})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := t.Context()
	r := New(st)
	home, err := r.CreateHome(ctx, "Rose Court", "")
	if err != nil {
		t.Fatal(err)
	}
	d, code, err := r.EnrollDevice(ctx, home.ID, "Office PC", 0)
	if err != nil {
		t.Fatal(err)
	}
	_, pendingCode, err := r.EnrollDevice(ctx, home.ID, "Spare laptop", 0) // never redeemed
	if err != nil {
		t.Fatal(err)
	}
	if _, cred, err := r.Redeem(ctx, code); err != nil {
		t.Fatal(err)
	} else {
		if _, _, err := r.Authenticate(ctx, cred); err != nil {
			t.Fatal(err)
		}
		if _, err := r.Audit(ctx, AuditEvent{Device: d.ID, Org: home.ID, Action: "view"}); err != nil {
			t.Fatal(err)
		}
		secrets := []string{cred, cred[len(credPrefix):], code, pendingCode}
		for _, c := range []string{code, pendingCode} {
			norm, _ := normaliseCode(c)
			secrets = append(secrets, norm)
		}

		var sawHash bool
		for _, ns := range namespaces {
			err := st.Scan(ns, "", func(k string, v []byte) error {
				sawHash = sawHash || k == hashSecret(cred)
				for _, s := range secrets {
					if strings.Contains(k, s) || bytes.Contains(v, []byte(s)) {
						t.Errorf("namespace %s, key %q holds a secret in plain text", ns, k)
					}
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		if !sawHash {
			t.Error("the credential's hash is not in the store: the search is looking in the wrong place")
		}
		err = st.ReadLog(auditLog, 0, func(seq uint64, v []byte) error {
			for _, s := range secrets {
				if bytes.Contains(v, []byte(s)) {
					t.Errorf("audit event %d holds a secret", seq)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Close(); err != nil {
			t.Fatal(err)
		}
		for _, s := range secrets {
			if hits := filesContaining(t, dir, s); len(hits) > 0 {
				t.Errorf("a secret is on disk in %v", hits)
			}
		}
	}
}

func filesContaining(t *testing.T, dir, needle string) []string {
	t.Helper()
	var hits []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if bytes.Contains(b, []byte(needle)) {
			hits = append(hits, filepath.Base(path))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return hits
}

// TestNormaliseCode: codes are accepted as people type them, and nothing else is.
func TestNormaliseCode(t *testing.T) {
	for in, want := range map[string]string{
		"ABCD-EFGH-JKMN":     "ABCDEFGHJKMN",
		"abcd efgh jkmn":     "ABCDEFGHJKMN",
		"abcdefghjkmn":       "ABCDEFGHJKMN",
		" AbCd-EfGh-JkMn ":   "ABCDEFGHJKMN",
		"O0IL-1234-5678":     "0011" + "12345678",
		"ABCD-EFGH-JKMU":     "", // U is not in the alphabet
		"ABCD-EFGH-JKM":      "",
		"ABCD-EFGH-JKMN-P":   "",
		"ABCD_EFGH_JKMN":     "",
		"ABCD-EFGH-JKMÑ":     "",
		"":                   "",
		"----------------":   "",
		"ABCD-EFGH-JKMN\x00": "",
	} {
		got, ok := normaliseCode(in)
		if got != want || ok != (want != "") {
			t.Errorf("normaliseCode(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
	for range 100 {
		c := newCode()
		if n, ok := normaliseCode(c); !ok || len(n) != codeLen {
			t.Fatalf("normaliseCode(newCode() %q) = %q, %v", c, n, ok)
		}
		if cred := newCredential(); !credentialShapeOK(cred) || len(cred) != credLen {
			t.Fatalf("credentialShapeOK(newCredential() %q) = false", cred)
		}
	}
}
