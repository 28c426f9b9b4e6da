package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/dgraph-io/badger/v4"
)

func appendChained(t *testing.T, s *Store, vals ...string) uint64 {
	t.Helper()
	var bs [][]byte
	for _, v := range vals {
		bs = append(bs, []byte(v))
	}
	first, err := s.AppendChained(context.Background(), "audit", bs, nil)
	if err != nil {
		t.Fatalf("AppendChained = %v", err)
	}
	return first
}

func readChained(t *testing.T, s *Store) []string {
	t.Helper()
	var out []string
	if err := s.ReadChained("audit", 0, func(seq uint64, v []byte) error {
		if seq != uint64(len(out)+1) {
			return fmt.Errorf("seq %d after %d entries", seq, len(out))
		}
		out = append(out, string(v))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// The chain runs across calls, concurrent appends and a reopen; the keys
// written with an append are there with it; the head is what the entries
// make.
func TestChainedLog(t *testing.T) {
	dir := t.TempDir()
	s := openInternal(t, dir)
	if first := appendChained(t, s, "a", "b"); first != 1 {
		t.Fatalf("first seq %d, want 1", first)
	}
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			_, err := s.AppendChained(context.Background(), "audit", [][]byte{[]byte(fmt.Sprint("x", i)), []byte(fmt.Sprint("y", i))},
				[]Change{{NS: "seen", Key: fmt.Sprint(i), Val: []byte("1")}})
			if err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	s.Close()
	s = openInternal(t, dir)
	if first := appendChained(t, s, "z"); first != 43 {
		t.Fatalf("first seq after reopen %d, want 43", first)
	}
	got := readChained(t, s)
	if len(got) != 43 || got[0] != "a" || got[42] != "z" {
		t.Fatalf("entries %q", got)
	}
	// Each pair went in together.
	for i, v := range got {
		if strings.HasPrefix(v, "x") && got[i+1] != "y"+v[1:] {
			t.Fatalf("entry %d %q followed by %q", i+1, v, got[i+1])
		}
	}
	for i := range 20 {
		if _, err := s.Get("seen", fmt.Sprint(i)); err != nil {
			t.Fatalf("key written with append %d: %v", i, err)
		}
	}
	n, head, err := s.VerifyChain("audit")
	if err != nil || n != 43 {
		t.Fatalf("VerifyChain = %d, %v", n, err)
	}
	var want Link
	for _, v := range got {
		want = link(want, []byte(v))
	}
	if head != want {
		t.Fatalf("head %s, want %s", head, want)
	}
}

// An entry altered (with a valid frame), removed, or inserted breaks the
// chain at that entry; VerifyChain names it.
func TestChainShowsTampering(t *testing.T) {
	for _, tc := range []struct {
		name   string
		tamper func(txn *badger.Txn) error
		want   ChainError
	}{
		{"altered", func(txn *badger.Txn) error {
			item, err := txn.Get(chainKey("audit", 3))
			if err != nil {
				return err
			}
			raw, _ := item.ValueCopy(nil)
			prev, _, _ := splitChained(raw)
			return txn.Set(chainKey("audit", 3), encodeFrame(append(prev[:], "forged"...)))
		}, ChainError{Seq: 4, After: 3}},
		{"removed", func(txn *badger.Txn) error { return txn.Delete(chainKey("audit", 2)) }, ChainError{Seq: 3, After: 1}},
		{"replaced whole", func(txn *badger.Txn) error {
			var zero Link
			return txn.Set(chainKey("audit", 2), encodeFrame(append(zero[:], "b"...)))
		}, ChainError{Seq: 2, After: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := openInternal(t, t.TempDir())
			appendChained(t, s, "a", "b", "c", "d", "e")
			if _, _, err := s.VerifyChain("audit"); err != nil {
				t.Fatalf("before tampering: %v", err)
			}
			if err := s.db.Update(tc.tamper); err != nil {
				t.Fatal(err)
			}
			n, _, err := s.VerifyChain("audit")
			var ce *ChainError
			if !errors.Is(err, ErrChainBroken) || !errors.As(err, &ce) || *ce != tc.want || n != tc.want.After {
				t.Fatalf("VerifyChain = %d, %v; want a break at %+v", n, err, tc.want)
			}
		})
	}
}

// DeleteDoc leaves nothing of the document, and nothing of another.
func TestDeleteDoc(t *testing.T) {
	s := openInternal(t, t.TempDir())
	mustAppend(t, s, "gone", "a", "b")
	mustAppend(t, s, "kept", "c")
	ctx := context.Background()
	for _, peer := range []string{"relay", "relay2"} {
		for _, doc := range []string{"gone", "kept"} {
			if err := s.PutSyncState(ctx, peer, doc, []byte("st")); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := s.Compact(ctx, "gone", []byte("snap"), 1); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteDoc(ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.LoadDoc("gone"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("LoadDoc after delete = %v", err)
	}
	if _, err := s.SyncState("relay", "gone"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("sync state after delete = %v", err)
	}
	docs, _ := s.Docs()
	if len(docs) != 1 || docs[0] != "kept" {
		t.Fatalf("Docs = %v", docs)
	}
	if d, err := s.LoadDoc("kept"); err != nil || len(d.Chunks) != 1 {
		t.Fatalf("the other document: %v", err)
	}
	if _, err := s.SyncState("relay2", "kept"); err != nil {
		t.Fatal(err)
	}
	// Stored again later, it starts afresh.
	mustAppend(t, s, "gone", "x")
	if d, err := s.LoadDoc("gone"); err != nil || len(d.Chunks) != 1 || d.Snapshot != nil {
		t.Fatalf("stored again: %+v, %v", d, err)
	}
}
