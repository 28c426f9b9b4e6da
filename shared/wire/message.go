package wire

import (
	"errors"
	"fmt"
	"log/slog"
)

// ProtocolV1 is the only websocket protocol version automerge-repo 2.x speaks.
const ProtocolV1 = "1"

// MaxFrameSize is the largest frame Decode accepts and Encode produces.
// automerge sync does not split a document's history across messages, so the
// first sync of a large record arrives as one frame; the limit is generous
// for that and still bounds what one hostile frame can make us allocate.
const MaxFrameSize = 64 << 20

// Type names a message kind: the value of the frame's "type" key.
type Type string

// The message types of automerge-repo's websocket protocol, version "1".
const (
	TypeJoin                     Type = "join"                       // client → server, first frame
	TypePeer                     Type = "peer"                       // server → client, answer to join
	TypeError                    Type = "error"                      // server → client, then close
	TypeLeave                    Type = "leave"                      // legacy (automerge-repo 1.x); 2.x never sends it
	TypeSync                     Type = "sync"                       // automerge sync message for one document
	TypeRequest                  Type = "request"                    // sync message from a peer that lacks the document
	TypeDocUnavailable           Type = "doc-unavailable"            // "I don't have it and can't get it"
	TypeEphemeral                Type = "ephemeral"                  // gossip (presence); never stored
	TypeRemoteHeadsChanged       Type = "remote-heads-changed"       // opt-in heads gossip
	TypeRemoteSubscriptionChange Type = "remote-subscription-change" // opt-in heads gossip control

	// Haven's own types. JavaScript peers never send them and drop them
	// unread, as they drop every type they do not know.
	TypeHavenList     Type = "haven-list"      // client asks, relay answers: the document IDs in the client's scope
	TypeHavenFetch    Type = "haven-fetch"     // client → relay: send these documents whole
	TypeHavenDoc      Type = "haven-doc"       // relay → client: one stored document (snapshot and chunks)
	TypeHavenAudit    Type = "haven-audit"     // client → relay: a batch of audit events (data), numbered by count
	TypeHavenAuditAck Type = "haven-audit-ack" // relay → client: the relay holds the device's audit events up to number count
	TypeHavenTrust    Type = "haven-trust"     // relay → client: Trust (JSON) in data
	TypeHavenCertReq  Type = "haven-cert-request"
	// haven-cert-request: client → relay, a CertRequest (JSON) in data
	TypeHavenWho Type = "haven-who" // client → relay: WhoRequest; relay → client: Who (JSON in data)
	// haven-leaver: client → relay, a Leaver (JSON in data); answered with
	// haven-trust carrying the revocation, or an error
	TypeHavenLeaver Type = "haven-leaver"
	// The advice line finds and opens records through the relay, and an
	// IG lead reviews break-glass accesses: a request (JSON in data) and
	// the relay's answer, matched by the request's ID.
	TypeHavenSearch Type = "haven-search" // SearchQuery, answered by SearchResult
	TypeHavenOpen   Type = "haven-open"   // OpenRequest, answered by OpenResult (then the documents)
	TypeHavenReview Type = "haven-review" // ReviewRequest, answered by ReviewList
	// haven-gone: relay → client, documents this device held and may hold
	// no longer (code says why: CodeNotShared, CodeTransferred, with the
	// receiving home's name as message); the device deletes its copies and
	// asks for them again only when the relay lists them.
	TypeHavenGone Type = "haven-gone"
)

// Known reports whether t is a type this package decodes field by field.
// Messages of other types decode without error but carry only Type and,
// where present, SenderID and TargetID; callers drop them, as JavaScript peers do.
func (t Type) Known() bool {
	_, ok := schemas[t]
	return ok
}

// PeerMetadata is what a peer says about itself in join and peer messages.
type PeerMetadata struct {
	// StorageID identifies the peer's storage (a UUID string in automerge-repo).
	// Empty when the peer has none. A peer keys the sync states it persists for
	// us by this ID, so it must stay the same across restarts.
	StorageID string
	// IsEphemeral tells the other side not to persist sync states for this peer.
	IsEphemeral bool
}

// RemoteHeads is one entry of a remote-heads-changed message: the heads a
// storage ID was last seen with and when (milliseconds since the Unix epoch).
type RemoteHeads struct {
	Heads     []string // bs58check-encoded change hashes
	Timestamp int64
}

// Message is one frame of the protocol. Which fields a type carries is listed
// in doc.go; Encode writes only those, and Decode reads only those.
//
// Empty strings, nil slices, a nil PeerMetadata and a zero Count mean "absent".
type Message struct {
	Type Type

	SenderID   string // every type
	TargetID   string // every type but join and leave
	DocumentID string // sync, request, doc-unavailable, ephemeral, remote-heads-changed
	Data       []byte // sync, request (automerge sync message); ephemeral (CBOR payload)

	PeerMetadata              *PeerMetadata // join, peer
	SupportedProtocolVersions []string      // join
	SelectedProtocolVersion   string        // peer

	ErrorMessage string // error: the "message" key
	// ErrorCode is Haven's addition to error: a stable, machine-readable
	// name of the refusal (the "code" key; see the Code constants).
	// JavaScript peers ignore it and show ErrorMessage.
	ErrorCode string

	Count     uint64 // ephemeral: sender's sequence number, from 1
	SessionID string // ephemeral: sender's random session ID

	NewHeads map[string]RemoteHeads // remote-heads-changed, keyed by storage ID

	Add    []string // remote-subscription-change: storage IDs
	Remove []string // remote-subscription-change: storage IDs

	DocumentIDs []string // haven-list, haven-fetch
	Snapshot    []byte   // haven-doc: the stored snapshot, if any
	Chunks      [][]byte // haven-doc: the chunks stored after it
}

// LogValue lets slog print a message by its IDs and sizes, never its data.
func (m Message) LogValue() slog.Value {
	attrs := []slog.Attr{slog.String("type", string(m.Type))}
	add := func(k, v string) {
		if v != "" {
			attrs = append(attrs, slog.String(k, v))
		}
	}
	add("sender", m.SenderID)
	add("target", m.TargetID)
	add("doc", m.DocumentID)
	if m.Data != nil {
		attrs = append(attrs, slog.Int("bytes", len(m.Data)))
	}
	return slog.GroupValue(attrs...)
}

// Errors returned by this package. Decode's errors wrap ErrTooLarge or
// ErrMalformed; Validate's wrap ErrInvalid.
var (
	ErrTooLarge  = errors.New("wire: frame too large")
	ErrMalformed = errors.New("wire: malformed frame")
	ErrInvalid   = errors.New("wire: invalid message")
)

// field is a set of message keys, used to describe each type's shape.
type field uint32

const (
	fSender field = 1 << iota
	fTarget
	fDocument
	fData
	fPeerMetadata
	fSupported
	fSelected
	fErrorMessage
	fCount
	fSession
	fNewHeads
	fAdd
	fRemove
	fDocumentIDs
	fSnapshot
	fChunks
	fErrorCode
)

// schemas lists the keys each known type carries, as automerge-repo 2.5 sends them.
var schemas = map[Type]field{
	TypeJoin:                     fSender | fPeerMetadata | fSupported,
	TypePeer:                     fSender | fTarget | fPeerMetadata | fSelected,
	TypeError:                    fSender | fTarget | fErrorMessage | fErrorCode | fDocument, // documentId: the refused message's, when it had one
	TypeLeave:                    fSender,
	TypeSync:                     fSender | fTarget | fDocument | fData,
	TypeRequest:                  fSender | fTarget | fDocument | fData,
	TypeDocUnavailable:           fSender | fTarget | fDocument,
	TypeEphemeral:                fSender | fTarget | fDocument | fData | fCount | fSession,
	TypeRemoteHeadsChanged:       fSender | fTarget | fDocument | fNewHeads,
	TypeRemoteSubscriptionChange: fSender | fTarget | fAdd | fRemove,
	TypeHavenList:                fSender | fTarget | fDocumentIDs,
	TypeHavenFetch:               fSender | fTarget | fDocumentIDs,
	TypeHavenDoc:                 fSender | fTarget | fDocument | fSnapshot | fChunks,
	TypeHavenAudit:               fSender | fTarget | fData | fCount,
	TypeHavenAuditAck:            fSender | fTarget | fCount,
	TypeHavenTrust:               fSender | fTarget | fData,
	TypeHavenCertReq:             fSender | fTarget | fData,
	TypeHavenLeaver:              fSender | fTarget | fData,
	TypeHavenWho:                 fSender | fTarget | fData,
	TypeHavenSearch:              fSender | fTarget | fData,
	TypeHavenOpen:                fSender | fTarget | fData,
	TypeHavenReview:              fSender | fTarget | fData,
	TypeHavenGone:                fSender | fTarget | fDocumentIDs | fErrorCode | fErrorMessage,
}

// unknownSchema is what Decode reads and Encode writes for unknown types.
const unknownSchema = fSender | fTarget

// required lists, per type, the keys a receiver needs to act on the message.
// It follows what the JavaScript code dereferences, plus targetId wherever the
// JavaScript server adapter asserts it before sending.
var required = map[Type]field{
	TypeJoin:                     fSender,
	TypePeer:                     fSender | fTarget | fSelected,
	TypeError:                    fErrorMessage,
	TypeLeave:                    fSender,
	TypeSync:                     fSender | fTarget | fDocument | fData,
	TypeRequest:                  fSender | fTarget | fDocument | fData,
	TypeDocUnavailable:           fSender | fTarget | fDocument,
	TypeEphemeral:                fSender | fTarget | fDocument | fData | fCount | fSession,
	TypeRemoteHeadsChanged:       fSender | fTarget | fDocument | fNewHeads,
	TypeRemoteSubscriptionChange: fSender | fTarget,
	TypeHavenList:                fSender,
	TypeHavenFetch:               fSender | fDocumentIDs,
	TypeHavenDoc:                 fSender | fDocument,
	TypeHavenAudit:               fSender | fData | fCount,
	TypeHavenAuditAck:            fSender, // count 0: the relay holds none of the device's events
	TypeHavenTrust:               fSender | fData,
	TypeHavenCertReq:             fSender | fData,
	TypeHavenLeaver:              fSender | fData,
	TypeHavenWho:                 fSender | fData,
	TypeHavenSearch:              fSender | fData,
	TypeHavenOpen:                fSender | fData,
	TypeHavenReview:              fSender | fData,
	TypeHavenGone:                fSender | fDocumentIDs | fErrorCode,
}

// Validate reports whether m carries every field its type needs, and a
// well-formed document ID where it has one. Decode does not call it: a relay
// decodes, drops unknown types, then validates what it will act on.
func (m Message) Validate() error {
	req, ok := required[m.Type]
	if !ok {
		return fmt.Errorf("%w: unknown type %q", ErrInvalid, m.Type)
	}
	missing := func(key string) error {
		return fmt.Errorf("%w: %s message without %s", ErrInvalid, m.Type, key)
	}
	switch {
	case req&fSender != 0 && m.SenderID == "":
		return missing("senderId")
	case req&fTarget != 0 && m.TargetID == "":
		return missing("targetId")
	case req&fDocument != 0 && m.DocumentID == "":
		return missing("documentId")
	case req&fData != 0 && len(m.Data) == 0:
		// automerge-repo refuses to send zero-length data, and a receiver
		// cannot apply it, so empty counts as missing.
		return missing("data")
	case req&fSelected != 0 && m.SelectedProtocolVersion == "":
		return missing("selectedProtocolVersion")
	case req&fErrorMessage != 0 && m.ErrorMessage == "":
		return missing("message")
	case req&fErrorCode != 0 && m.ErrorCode == "":
		return missing("code")
	case req&fCount != 0 && m.Count == 0:
		return missing("count")
	case req&fSession != 0 && m.SessionID == "":
		return missing("sessionId")
	case req&fNewHeads != 0 && len(m.NewHeads) == 0:
		return missing("newHeads")
	case req&fDocumentIDs != 0 && len(m.DocumentIDs) == 0:
		return missing("documentIds")
	}
	if req&fDocument != 0 && !ValidDocumentID(m.DocumentID) {
		return fmt.Errorf("%w: %s message with malformed documentId %q", ErrInvalid, m.Type, m.DocumentID)
	}
	return nil
}
