// Package wire is automerge-repo's websocket protocol, version "1", as spoken
// by @automerge/automerge-repo and @automerge/automerge-repo-network-websocket
// 2.5.x: typed messages, a CBOR codec, and the checks a receiver needs.
// syncd and the desktop both use it; nothing here touches a socket.
//
// The facts below were read from the 2.5.6 dist sources and checked against
// them (testdata/js_frames.json is written by the real encoder; the tests
// also feed our frames to the real decoder).
//
// # Frames
//
// One websocket binary message is one CBOR map with text keys. The JS side
// encodes with cbor-x (useRecords off, tagUint8Array off), which means:
//   - every object is a map with a 2-byte length header (0xb9 0x00 0x0N),
//     never the short form; any CBOR decoder copes;
//   - strings are text strings; Uint8Array (sync and ephemeral data) is a
//     plain byte string, no tag;
//   - a JS number holding an integer in [-2^32, 2^32) is a CBOR integer
//     (at most a 4-byte argument); any other number, Date.now() timestamps
//     included, is a float64;
//   - a key whose value is undefined is still written, with 0xf7: a Repo
//     without storage sends peerMetadata {storageId: undefined, isEphemeral: true}.
//
// cbor-x decodes an 8-byte integer (0x1b, 0x3b) as a BigInt, which breaks
// arithmetic in automerge-repo, so Encode writes such numbers as float64.
// cbor-x rejects trailing bytes after the map and an empty frame. A client
// drops a frame it cannot decode; the JS server closes the socket instead.
//
// # Messages
//
// Every message has type (text) and senderId (text, the sender's peer ID).
// Key order is irrelevant. Columns: key and CBOR type; * = always sent by JS.
//
//	join            senderId*, peerMetadata* {storageId?: text, isEphemeral?: bool},
//	                supportedProtocolVersions* [text] (["1"])
//	peer            senderId*, targetId*, peerMetadata*, selectedProtocolVersion* ("1")
//	error           senderId*, targetId*, message* (text); Haven adds code? (text)
//	leave           senderId* (automerge-repo 1.x only; 2.x neither sends nor handles it)
//	sync            senderId*, targetId*, documentId*, data* (bytes: automerge sync message)
//	request         same keys as sync
//	doc-unavailable senderId*, targetId*, documentId*
//	ephemeral       senderId*, targetId*, documentId*, data* (bytes: CBOR of the app's
//	                payload), count* (number), sessionId* (text)
//	remote-heads-changed       senderId*, targetId*, documentId*,
//	                           newHeads* {storageId: {heads: [text], timestamp: number}}
//	remote-subscription-change senderId*, targetId*, add? [text], remove? [text]
//
// Peer IDs are free-form strings (JS default "peer-" plus random base36; the
// sync server uses "storage-server-<hostname>"). A storage ID is a UUID string
// a Repo generates once and keeps in its storage. A session ID is a random
// base36 string made when a Repo starts. A document ID is base58check of 16
// random bytes (see ValidDocumentID); the URL form is automerge:<id>.
// Heads in newHeads are bs58check-encoded change hashes.
//
// # Connection
//
// The client speaks first: as soon as its socket opens it sends join. The
// server answers peer (it never speaks before join). If no version in
// supportedProtocolVersions is "1" (a missing list counts as "1"), the JS
// server sends error "unsupported protocol version" and closes. A second join
// with the same senderId replaces the older socket, which the server closes.
// The JS server drops any non-join frame whose senderId is not the peer that
// joined on that socket.
//
// The JS client does not react to error at all beyond a debug log: it stays
// connected until the server closes the socket. On close it reconnects after
// retryInterval (5 s by default) and keeps retrying forever, sending join
// again each time. Until a peer message arrives its adapter is "not ready";
// after 1 s it declares itself ready anyway, and a find() that then finds no
// connected peer reports the document unavailable. A server must therefore
// answer join well within a second.
//
// In Node, a failed websocket handshake other than ECONNREFUSED (for example
// an HTTP 401 from the upgrade) makes the JS client adapter throw from its
// error handler, an uncaught exception that ends a plain Node process.
// Rejecting a bad credential after the upgrade with an error message and a
// close is the gentler path (the client then retries every 5 s).
//
// Keep-alive: the JS server pings every 5 s and terminates a socket that has
// not answered the previous ping. The JS client sends no pings of its own;
// browsers and ws answer pings automatically.
//
// # Documents
//
// A Repo that finds a document it holds neither in memory nor in storage
// sends request (not sync) to each connected peer; otherwise sync. A peer
// that receives request for a document it lacks answers doc-unavailable once
// none of the other peers it asked has it; the automerge sync server
// (sharePolicy returning false) asks no one, so it answers at once. It
// remembers who requested, and if the document reaches it later it syncs it
// to them unasked: the JS handle then goes from unavailable to ready. A
// document outside the share policy's access gets the same doc-unavailable
// as a missing one. Data of length zero is never sent.
//
// JS find() has no timeout of its own: a request that gets neither sync nor
// doc-unavailable back leaves it waiting for ever, so a server must answer
// every request one way or the other.
//
// sharePolicy (announce) decides whether a Repo offers a document to a peer
// that has not asked; access decides whether it answers one that has.
//
// # Sync state persistence
//
// A Repo with storage persists its sync state for (documentId, peer) under
// the key [documentId, "sync-state", storageId], but only when the peer's
// metadata has a storageId and isEphemeral is not true; it reloads that state
// the next time the peer with that storageId asks for the document. It also
// records, per storageId, the heads the peer was last known to have, which a
// JS app can read with DocHandle.getSyncInfo(storageId): this is how a client
// learns that the server holds its changes. A Repo without storage announces
// isEphemeral true and no storageId.
//
// # Ephemeral messages
//
// A Repo stamps each ephemeral message it originates with its senderId, its
// sessionId and a count from one counter shared by all documents and peers
// (so one peer sees gaps). It forwards a received ephemeral message, unchanged
// but for targetId, to every other peer syncing that document. A receiver
// delivers and forwards it only if count is greater than the last count seen
// from that senderId:sessionId pair (the first one is always accepted);
// anything else is a duplicate and dropped. Because senderId stays the
// originator's, a client echoes a message the server forwarded to it back to
// the server; the JS server drops the echo, since its senderId is not the
// peer that joined on that socket, and the count check would too.
//
// # Remote heads gossip
//
// remote-heads-changed and remote-subscription-change are only sent, and only
// acted on, by Repos created with enableRemoteHeadsGossiping; others drop them.
//
// # Unknown types
//
// A JS Repo drops a message whose type it does not know, so Haven may add
// types of its own. Decode returns such frames with Type.Known() false.
//
// # Haven's own types
//
//	haven-list          client asks (no data); relay answers with documentIds in the client's scope
//	haven-fetch         client → relay: documentIds to send whole
//	haven-doc           relay → client: one document (documentId, snapshot, chunks)
//	haven-audit         client → relay: a batch of audit events (JSON in data), numbered by count
//	haven-audit-ack     relay → client: the batch numbered count is stored
//	haven-trust         relay → client: Trust (JSON in data): the organisation key, every
//	                    revocation, this device's certificates and open requests; sent after
//	                    join, after a certificate request, and on every revocation
//	haven-cert-request  client → relay: CertRequest (JSON in data)
//	haven-who           client → relay: WhoRequest; relay → client: Who (JSON in data)
//
// An error from Haven's relay also carries code: a stable name of the
// refusal ("rule/decision-deleted", "quarantined": see the Code constants
// and RuleCode), which clients act on instead of the message's words.
package wire
