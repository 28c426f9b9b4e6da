package crdt

import (
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/automerge/automerge-go"
)

// SyncState is Automerge's record of what one peer is known to have of one
// document. Keep one per (document, peer); Save it so that a reconnect costs a
// handshake rather than a resend.
//
// Automerge's exchange waits for an answer to each message it sends, and
// counts a message answered only when the answer's heads are all known to
// it. Two peers can so wait on each other for ever: one holds a change the
// other lacks (kept back by a Bloom-filter false positive, say) while each
// believes its own last message unanswered, and neither speaks again until a
// reconnect. SyncState breaks that wait: when the last message received
// announced heads this document does not hold and Automerge has nothing to
// say, it begins its side afresh (keeping only what the peer confirmed, as
// a reconnect does), which makes the next message go out and the peer send
// what it holds. At most once for each message received, so a peer that
// announces heads it never sends gets one answer per message and no more.
type SyncState struct {
	doc *Doc
	ss  *automerge.SyncState
	// behind: the last message received named heads the document lacks,
	// and no fresh start has answered it yet.
	behind   bool
	restarts int
	// The whole document instead of changes (see Receive): the peer
	// announced it reads such messages; the next message goes that way;
	// this state has sent one already.
	peerWhole, sendWhole, wholeSent bool
	// pending is a settled acknowledgement (SettledAck) received but not
	// yet given to Automerge, and pendingHeads its heads (see Receive);
	// settled: no message has been made from the state, or sent in place
	// of one, since it came (see SettledAt).
	pending      []byte
	pendingHeads []Hash
	settled      bool
	// holdNone turns holding back off, for tests that compare the two.
	holdNone bool
}

// NewSyncState starts syncing d with a peer about which nothing is known.
func NewSyncState(d *Doc) *SyncState {
	d.mu.Lock()
	defer d.mu.Unlock()
	return &SyncState{doc: d, ss: automerge.NewSyncState(d.am)}
}

// LoadSyncState resumes from a state saved by Save.
func LoadSyncState(d *Doc, saved []byte) (s *SyncState, err error) {
	defer recoverTo(&err, "load sync state")
	ss, err := automerge.LoadSyncState(d.am, saved)
	if err != nil {
		return nil, fmt.Errorf("load sync state: %w", err)
	}
	return &SyncState{doc: d, ss: ss}, nil
}

// Receive applies a sync message from the peer to the document.
//
// A peer that holds nothing and reads version 2 sync messages (it says so
// at the end of its messages; see whole.go) is answered as newer Automerge
// answers it: with the whole document in Automerge's compressed save
// format, as one chunk, instead of every change. It then loads one
// document instead of applying each change, and the bytes on the wire are
// about the document's saved size. automerge-go reads no version 2 and
// would put every change in its answer, at a cost that grows with the
// history and is then thrown away; so it is shown the peer's message
// without its "have" entries, which leaves it nothing to pick (they only
// said the peer has nothing, which its empty heads say already), and
// Generate puts the document in. Its state then believes it sent no
// change: the peer's next message names the heads it then holds, which
// the state takes as it takes any the peer had from elsewhere. Once per
// state: a peer that still names no heads after that (it could not load
// the document, say) gets the changes as automerge-go sends them.
//
// A settled acknowledgement of the document's heads (SettledAck), the
// answer of a peer that took a change it was sent, is held back from
// Automerge until the state is next asked for something it changes: the
// peer's next message (which replaces it, if settled too), the next
// message made for the peer, the state saved. What Automerge then keeps
// of the peer is what it would have kept, but that the last heads sent
// may stay older; that only decides whether the next message is worth
// making, and by then the document has changed since either (see
// Generate, which answers as Automerge would while it has not).
func (s *SyncState) Receive(msg []byte) (err error) {
	defer recoverTo(&err, "receive sync message")
	s.doc.mu.Lock()
	defer s.doc.mu.Unlock()
	if heads, ok := AckedHeads(msg); ok && !s.holdNone && sameSet(heads, s.doc.headsLocked()) {
		s.pending, s.pendingHeads, s.settled = slices.Clone(msg), heads, true
		s.behind, s.sendWhole = false, false
		return nil
	}
	if err := s.applyPending(); err != nil {
		return err
	}
	s.settled = false
	defer s.doc.changed()
	// Automerge 0.5.12 to 0.7 announce their capabilities in their first
	// message only, so the announcement is kept, not taken per message.
	s.peerWhole = s.peerWhole || readsWholeDocuments(msg)
	shown, whole := msg, false
	if s.peerWhole && !s.wholeSent && namesNoHeads(msg) && len(s.doc.am.Heads()) > 0 {
		shown, whole = withoutHaves(msg)
	}
	sm, err := s.ss.ReceiveMessage(shown)
	if err != nil {
		return err
	}
	s.sendWhole = whole
	s.behind = false
	for _, h := range sm.Heads() {
		if _, err := s.doc.am.Change(h); err != nil {
			s.behind = true
			break
		}
	}
	return nil
}

// applyPending gives Automerge the settled acknowledgement held back, if
// any. Caller holds s.doc.mu.
func (s *SyncState) applyPending() error {
	if s.pending == nil {
		return nil
	}
	msg := s.pending
	s.pending = nil
	_, err := s.ss.ReceiveMessage(msg)
	return err
}

// SettledAt returns the heads a settled acknowledgement (SettledAck) last
// received by this state named, the document's heads then, if no message
// has been made from the state since; nil otherwise.
//
// What Automerge keeps of a peer after such a message is fixed by it: the
// heads both hold, the peer's heads, what it has and needs, that nothing
// sent is unanswered. So two states of one document settled at the same
// heads make the same next message, byte for byte, and a peer can be sent
// the one another state made (see Forwarded), for one Automerge call
// where there would be one a peer.
func (s *SyncState) SettledAt() []Hash {
	s.doc.mu.Lock()
	defer s.doc.mu.Unlock()
	if !s.settled {
		return nil
	}
	return s.pendingHeads
}

// Forwarded records that the peer was sent, in place of this state's next
// message, the one a state settled at the same heads made (SettledAt).
// Automerge's record of the peer is left as it was: the peer's answer,
// received here, brings it to where making the message would have, and
// were the message lost, the next one made here carries its changes again.
func (s *SyncState) Forwarded() {
	s.doc.mu.Lock()
	defer s.doc.mu.Unlock()
	s.settled = false
}

// Generate returns the next message for the peer; ok is false when the peer
// is known to have everything.
func (s *SyncState) Generate() (msg []byte, ok bool, err error) {
	defer recoverTo(&err, "generate sync message")
	s.doc.mu.Lock()
	defer s.doc.mu.Unlock()
	if s.pending != nil && sameSet(s.pendingHeads, s.doc.headsLocked()) {
		// The peer holds the document as it is and knows this side does:
		// given the acknowledgement, Automerge would have nothing to say.
		return nil, false, nil
	}
	if err := s.applyPending(); err != nil {
		return nil, false, err
	}
	m, ok := s.ss.GenerateMessage()
	if !ok && s.behind {
		s.behind = false
		fresh, err := automerge.LoadSyncState(s.doc.am, s.ss.Save())
		if err != nil {
			return nil, false, fmt.Errorf("begin sync afresh: %w", err)
		}
		s.ss, s.restarts = fresh, s.restarts+1
		m, ok = s.ss.GenerateMessage()
	}
	if !ok {
		// Automerge changed nothing in its record: still settled, if so.
		return nil, false, nil
	}
	s.settled = false
	msg = m.Bytes()
	if s.sendWhole {
		// Sent or not, never again from this state: should the rewrite
		// fail, the peer's next message (no heads still) gets the changes.
		s.sendWhole, s.wholeSent = false, true
		if out, ok := asWholeDocument(msg, s.doc.am.Save()); ok {
			return out, true, nil
		}
	}
	return msg, true, nil
}

// Restarts counts the times this state began its side of the exchange
// afresh because both peers had fallen silent apart (see SyncState).
func (s *SyncState) Restarts() int {
	s.doc.mu.Lock()
	defer s.doc.mu.Unlock()
	return s.restarts
}

// Save encodes the state to persist. Automerge keeps only the shared heads.
func (s *SyncState) Save() []byte {
	s.doc.mu.Lock()
	defer s.doc.mu.Unlock()
	if s.pending != nil {
		// What Automerge would keep once given it: the peer confirmed them.
		return SavedSharing(s.pendingHeads)
	}
	return s.ss.Save()
}

// SharedHeads are the heads both sides are known to have: what the peer has
// confirmed of this document. (Read from the saved form, which holds exactly
// that: a type byte 0x43, then the heads.)
func (s *SyncState) SharedHeads() []Hash {
	b := s.Save()
	r := reader{b: b}
	if t, ok := r.byte(); !ok || t != 0x43 {
		return nil
	}
	n, ok := r.uleb()
	if !ok || n > uint64(len(b))/32 {
		return nil
	}
	out := make([]Hash, n)
	for i := range out {
		copy(out[i][:], b[r.off:])
		r.off += 32
	}
	return out
}

// Covers reports whether every hash in heads is in shared.
func Covers(shared, heads []Hash) bool {
	for _, h := range heads {
		found := false
		for _, x := range shared {
			if x == h {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// SyncStateSharing returns a sync state that takes the peer to hold exactly
// heads (and nothing more is known): for a document just received whole
// from that peer, so that the first exchange is a handshake and the copy
// counts as confirmed at once.
func SyncStateSharing(d *Doc, heads []Hash) (*SyncState, error) {
	return LoadSyncState(d, SavedSharing(heads))
}

// SavedSharing is the saved form of a sync state whose peer has confirmed
// heads (Save): a type byte 0x43, then the heads.
func SavedSharing(heads []Hash) []byte {
	b := []byte{0x43}
	b = binary.AppendUvarint(b, uint64(len(heads)))
	for _, h := range heads {
		b = append(b, h[:]...)
	}
	return b
}

// HeadsMessage encodes a sync message that only announces heads (no need,
// no have, no changes). Its receiver learns the sender holds exactly those
// heads: a peer that already agreed with us gets no reply from Automerge, so
// this is how it hears that we agree.
func HeadsMessage(heads []Hash) []byte {
	b := []byte{0x42}
	b = binary.AppendUvarint(b, uint64(len(heads)))
	for _, h := range heads {
		b = append(b, h[:]...)
	}
	return append(b, 0, 0, 0) // need, have, changes: none
}

// WithChangesSince returns msg, a sync message Automerge made with no
// changes in it, carrying as well every change of d not in the history of
// since, if there are any and they come to at most limit bytes. Automerge
// sends no changes in the first message of an exchange (it waits to hear
// what the peer has); a peer that knows from an earlier exchange what the
// other side held can send what it made since at once, and save the round
// trip. The receiver applies them as it applies any message's changes; one
// it already has costs it nothing. ok is false, and msg is returned as it
// was, when there is nothing to add, too much, since is empty, or msg
// already carries changes.
func WithChangesSince(msg []byte, d *Doc, since []Hash, limit int) (out []byte, ok bool, err error) {
	if len(since) == 0 {
		return msg, false, nil
	}
	off, found := changesOffset(msg)
	if !found || msg[off] != 0 {
		return msg, false, nil
	}
	raws, size, err := d.rawChangesSince(since)
	if err != nil {
		return msg, false, err
	}
	if len(raws) == 0 || size > limit {
		return msg, false, nil
	}
	out = make([]byte, 0, len(msg)+size+8*len(raws))
	out = append(out, msg[:off]...)
	out = binary.AppendUvarint(out, uint64(len(raws)))
	for _, raw := range raws {
		out = binary.AppendUvarint(out, uint64(len(raw)))
		out = append(out, raw...)
	}
	return append(out, msg[off+1:]...), true, nil
}

// rawChangesSince returns the encoded changes of d not in the history of
// since, and their total size.
func (d *Doc) rawChangesSince(since []Hash) (raws [][]byte, size int, err error) {
	defer recoverTo(&err, "changes since")
	d.mu.Lock()
	defer d.mu.Unlock()
	chs, err := d.changesSince(since)
	if err != nil {
		return nil, 0, err
	}
	for _, c := range chs {
		raw := c.Save()
		size += len(raw)
		raws = append(raws, raw)
	}
	return raws, size, nil
}

// changesOffset finds where a sync message's change count begins.
func changesOffset(msg []byte) (int, bool) {
	off, ok := readHaves(msg, nil)
	return off, ok && off < len(msg)
}

// EmptySyncMessage is the first sync message an empty document sends a
// peer: "I hold nothing; send me what you have". The relay answers with it
// about a document it will not show a device, exactly as it would about
// one it lacks, and tests recognise it as saying nothing of a document.
func EmptySyncMessage() []byte {
	msg, _, err := NewSyncState(New()).Generate()
	if err != nil {
		panic("crdt: an empty document's first sync message: " + err.Error())
	}
	return msg
}
