// Package worker runs the relay's CRDT work in child processes. automerge-go
// aborts the whole process on some malformed sync messages (a Rust panic
// through cgo that Go cannot recover), so the relay never calls Automerge on
// what a peer sent from its own process: a Pool of children does, each a
// few work items at a time (never two on one document), and a crash costs
// one child, which is restarted; the items it held are replayed one by one.
//
// The parent keeps the store. A child loads documents, appends chunks,
// compacts and keeps sync states by calling back into the parent (Host), so
// nothing it has not fully applied is ever stored, and a change is durable
// before the parent forwards anything the child generated.
//
// Two socket pairs join parent and child, each carrying net/rpc with gob:
// one for the parent's calls into the child (Worker.*), one for the child's
// calls back (Host.*).
package worker

import (
	"haven/shared/cert"
	"haven/shared/crdt"
	"haven/shared/store"
	"haven/shared/syncer"
)

// WorkArgs is one work item: sync messages for one document, in order, and
// the peers that should hear about the result.
type WorkArgs struct {
	Doc    string
	Msgs   []syncer.In
	Notify []string
	Peers  []syncer.Peer // every peer named in Msgs or Notify
	// TrustVersion is the version of the parent's trust (organisation key
	// and revocations); a child holding an older one fetches it before
	// checking a change.
	TrustVersion uint64
	// StoredBytes is the document's stored size now; MaxDocBytes the most
	// it may grow to (0: no limit).
	StoredBytes, MaxDocBytes int64
	// Chunks are changes another relay node stored (package cluster), to
	// load as they are: trusted as that node checked them, stored here
	// without being passed to the cluster again, and sent to the peers in
	// Notify if they change the document. Msgs is then empty.
	Chunks [][]byte
	// Settled: every message is a settled acknowledgement (crdt.SettledAck)
	// of the document's heads as the relay last knew them, held back
	// since; for a document not in memory the child saves what they say
	// without loading it (syncer.Engine.Settle).
	Settled bool
	// Bulk: the item creates a document or carries a large message. The
	// child works it on a thread of lower scheduling priority, so that on
	// a busy machine one device's bulk work waits for everyone's small
	// edits rather than the other way round; on an idle one it runs at
	// full speed.
	Bulk bool
}

// WorkReply is what a work item produced.
type WorkReply struct {
	Out []OutMsg
	// NotFound: the document does not exist and nothing created it.
	NotFound bool
	// Failed names the message that could not be applied (not a crash).
	Failed *Failure
	// Record is, for a resident's record, what decides who beyond its
	// home may hold it; nil for other documents.
	Record *RecordFacts
	// Heads are the document's heads once the item was worked; nil for a
	// document the item did not find stored (one it created included).
	Heads []crdt.Hash
}

// RecordFacts are what a resident's record says about its sharing.
type RecordFacts struct {
	// Withdrawn: the person has withdrawn consent to share the record,
	// so only its own home's devices hold it, and its timeline.
	Withdrawn bool
	Timeline  string
	// NHS is the person's NHS number (record.NHSNumberOf), "" if none:
	// the relay keeps which record holds each number.
	NHS string
	// Home is the care home that holds the record now (record.CurrentHome):
	// when it is not the owner, the record has moved.
	Home string
}

// OutMsg is a sync message to send.
type OutMsg struct {
	To   string
	Doc  string
	Data []byte
}

// Failure describes a message the worker refused or could not apply.
type Failure struct {
	Index   int
	Peer    string
	Reason  string
	Refused bool // Admit refused a new document (scope)
	// Rule and Detail name the record rule the message's changes broke
	// (record.RuleError), if that is why it was refused.
	Rule, Detail string
	// TooLarge: the changes would take the document past MaxDocBytes.
	TooLarge bool
}

// ForgetArgs drops a disconnected peer's states.
type ForgetArgs struct{ Peer string }

// StatesReply carries dirty sync states for the parent to save in one
// batch, after the call: the child is free again meanwhile.
type StatesReply struct{ States []syncer.SavedState }

// Empty is an empty argument or reply.
type Empty struct{}

// UsageReply is what a child holds in memory: documents open, and their
// estimated memory in bytes.
type UsageReply struct {
	Docs  int
	Bytes int64
}

// Host-side messages.

type DocArgs struct{ Doc string }
type DocReply struct {
	Doc      store.Doc
	NotFound bool
}
type AppendArgs struct {
	Doc   string
	Chunk []byte
	// FromCluster: the chunk holds changes another relay node stored
	// (see FromCluster).
	FromCluster bool
}
type SeqReply struct{ Seq uint64 }
type QuarantineArgs struct {
	Doc    string
	Seq    uint64
	Reason string
}
type CompactArgs struct {
	Doc      string
	Snapshot []byte
	UpTo     uint64
}
type StateArgs struct{ Storage, Doc string }
type StateReply struct {
	State    []byte
	NotFound bool
}
type PutStateArgs struct {
	Storage, Doc string
	State        []byte
}

// ProvenanceArgs names, per actor new to a document, the peer whose message
// first brought its changes.
type ProvenanceArgs struct {
	Doc    string
	Actors map[string]string // actor → peer ID
}

// TrustReply is what the child checks signatures against.
type TrustReply struct {
	Anchor      []byte
	Revocations []cert.Revocation
	Version     uint64
}

// PersonArgs asks whether a resident's record may name an NHS number.
type PersonArgs struct {
	Doc  string
	Home string // the home that holds the record as its changes say (record.Guard.Home)
	NHS  string // ten digits
}

// PersonReply is the rule the record would break (record.PersonRule), ""
// if none, and its detail.
type PersonReply struct {
	Rule, Detail string
}

// WritersArgs asks which of the peers may change a region's document.
type WritersArgs struct {
	Doc   string
	Peers []string
}

// WritersReply names the peers that may.
type WritersReply struct{ Writers []string }

type AdmitArgs struct {
	Peer syncer.Peer
	Doc  string
	Home string // the document's "home" field, "" if it has none
}
