// Writes shared/wire/testdata/js_frames.json: frames produced by the real
// automerge-repo, for the Go codec's tests and fuzz seeds.
//
//   node fixtures.mjs [output-file]
//
// Two kinds of frame:
//   - "encoder": each message type built as automerge-repo's source builds it
//     and encoded with its own cbor helper (plus a few quirks: undefined
//     values, numbers past 2^32, tag 64, unknown types and keys). Deterministic.
//   - "live": every frame on the wire while real Repos (a server like
//     server.mjs, two clients) create, find, edit, gossip and fail to find
//     documents. Peer and storage IDs are random, so these change per run.
// Each entry has the frame in hex and, as "message", what automerge-repo's
// decoder makes of it (bytes as {"$bytes": hex}, undefined as {"$undefined": true}).
import fs from "node:fs"
import os from "node:os"
import path from "node:path"
import { fileURLToPath } from "node:url"
import { WebSocketServer, WebSocket } from "ws"
import * as A from "@automerge/automerge"
import {
  Repo, cbor, documentIdToBinary, encodeHeads, isValidDocumentId, parseAutomergeUrl, stringifyAutomergeUrl,
} from "@automerge/automerge-repo"
import { WebSocketClientAdapter, NodeWSServerAdapter } from "@automerge/automerge-repo-network-websocket"
import { NodeFSStorageAdapter } from "@automerge/automerge-repo-storage-nodefs"
import { Encoder } from "cbor-x"
import { toJSONable } from "./lib.mjs"

const here = path.dirname(fileURLToPath(import.meta.url))
const out = process.argv[2] ?? path.join(here, "../../shared/wire/testdata/js_frames.json")

const frames = []
function add(name, source, bytes) {
  const frame = new Uint8Array(bytes)
  frames.push({
    name,
    source,
    hex: Buffer.from(frame).toString("hex"),
    message: toJSONable(cbor.decode(frame)),
  })
}

// ---- encoder fixtures ------------------------------------------------------

const docId = parseAutomergeUrl(stringifyAutomergeUrl({ documentId: new Uint8Array(16).fill(7) })).documentId
const client = "peer-q8x2kd"
const server = "storage-server-relay"
const storageId = "3f1c1a52-8d3b-4c1e-9a55-0b6f0f6e2d11"

// Real automerge sync messages, made deterministic with a fixed actor and time.
const empty = A.init({ actor: "aa".repeat(16) })
const [, requestData] = A.generateSyncMessage(empty, A.initSyncState())
const doc = A.change(A.init({ actor: "bb".repeat(16) }), { time: 0 }, d => {
  d.name = "Test Resident"
  d.room = "12"
})
const [, syncData] = A.generateSyncMessage(doc, A.initSyncState())
const heads = A.getHeads(doc)

const synthetic = {
  join: { type: "join", senderId: client, peerMetadata: { storageId, isEphemeral: false }, supportedProtocolVersions: ["1"] },
  // A Repo without storage: storageId is undefined, and cbor-x still writes the key.
  "join-ephemeral": { type: "join", senderId: client, peerMetadata: { storageId: undefined, isEphemeral: true }, supportedProtocolVersions: ["1"] },
  // What automerge-repo 1.0 sent: no metadata, no versions (the server assumes "1").
  "join-legacy": { type: "join", senderId: client },
  peer: { type: "peer", senderId: server, peerMetadata: { storageId, isEphemeral: false }, selectedProtocolVersion: "1", targetId: client },
  error: { type: "error", senderId: server, message: "unsupported protocol version", targetId: client },
  leave: { type: "leave", senderId: client },
  // The synchronizer builds messages without senderId; the network layer appends it.
  request: { type: "request", targetId: server, documentId: docId, data: requestData, senderId: client },
  sync: { type: "sync", targetId: server, data: syncData, documentId: docId, senderId: client },
  "doc-unavailable": { type: "doc-unavailable", documentId: docId, targetId: client, senderId: server },
  ephemeral: {
    type: "ephemeral", targetId: server, documentId: docId, data: cbor.encode({ cursor: 3 }),
    count: 7, sessionId: "k2j3h4g5f6a", senderId: client,
  },
  // A count past 2^32 is written as a float64.
  "ephemeral-big-count": {
    type: "ephemeral", targetId: server, documentId: docId, data: cbor.encode({ cursor: 4 }),
    count: 2 ** 32 + 5, sessionId: "k2j3h4g5f6a", senderId: client,
  },
  // Date.now() timestamps are past 2^32 too: float64.
  "remote-heads-changed": {
    type: "remote-heads-changed", targetId: client, documentId: docId,
    newHeads: { [storageId]: { heads: encodeHeads(heads), timestamp: 1763800000123 } }, senderId: server,
  },
  // The Repo copies add and remove from its event; the one not set is written as undefined.
  "remote-subscription-change": { type: "remote-subscription-change", targetId: server, add: [storageId], remove: undefined, senderId: client },
  "remote-subscription-change-remove": { type: "remote-subscription-change", targetId: server, remove: [storageId], senderId: client },
  // Unknown types are dropped by JS peers; Haven may add its own.
  "unknown-type": { type: "haven-snapshot", senderId: server, targetId: client, documentId: docId, blob: new Uint8Array([1, 2, 3]), n: 1 },
  // Unknown keys are ignored.
  "sync-extra-keys": { type: "sync", targetId: server, data: syncData, documentId: docId, senderId: client, extra: [1, { a: null }], v: 2.5 },
}
for (const [name, msg] of Object.entries(synthetic)) add(name, "encoder", cbor.encode(msg))

// cbor-x's default encoder wraps Uint8Array in tag 64, as older automerge-repo did.
add("sync-tag64", "encoder", new Encoder({ useRecords: false }).encode(synthetic.sync))

// ---- document IDs ------------------------------------------------------------

// IDs from payloads with edge cases (leading zero bytes become leading "1"s),
// a few mangled ones, and what automerge-repo thinks of each.
const idOf = bytes => parseAutomergeUrl(stringifyAutomergeUrl({ documentId: bytes })).documentId
const payloads = [
  new Uint8Array(16), new Uint8Array(16).fill(0xff), new Uint8Array(16).fill(7),
  Uint8Array.from({ length: 16 }, (_, i) => (i < 3 ? 0 : i * 17)),
  Uint8Array.from({ length: 16 }, (_, i) => 255 - i * 13),
  new Uint8Array(20).fill(3), new Uint8Array(8).fill(1), new Uint8Array(0),
]
const validId = idOf(payloads[2])
const mangled = [
  validId.slice(0, -1) + (validId.endsWith("2") ? "3" : "2"), // checksum mismatch
  validId.slice(1), "1" + validId, validId + "1",
  validId.replace(/.$/, "0"), validId.replace(/.$/, "O"), validId.replace(/.$/, "l"), validId.replace(/.$/, "I"),
  "", "automerge:" + validId, validId.toLowerCase(), "4NMNnkMhL8jXrdJ9jamS58PAVdXu",
]
const documentIds = [...payloads.map(idOf), ...mangled].map(id => ({
  id,
  jsValid: isValidDocumentId(id),
  payloadLength: documentIdToBinary(id)?.length ?? null, // null: not base58check at all
}))

// ---- live capture ----------------------------------------------------------

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "haven-fixtures-"))
const wss = new WebSocketServer({ port: 0, host: "127.0.0.1" })
await new Promise(resolve => wss.on("listening", resolve))
const url = `ws://127.0.0.1:${wss.address().port}`

// Record both directions on the server's sockets. This listener is added
// before the adapter's, so the send wrapper is in place before any reply.
let n = 0
wss.on("connection", socket => {
  socket.on("message", b => add(`live-${++n}-in-${cbor.decode(b).type}`, "live", b))
  const send = socket.send.bind(socket)
  socket.send = (data, ...rest) => {
    const b = new Uint8Array(data)
    add(`live-${++n}-out-${cbor.decode(b).type}`, "live", b)
    return send(data, ...rest)
  }
})

const serverRepo = new Repo({
  network: [new NodeWSServerAdapter(wss)],
  storage: new NodeFSStorageAdapter(path.join(tmp, "server")),
  peerId: server,
  sharePolicy: async () => false,
  enableRemoteHeadsGossiping: true,
})

function connect(name, storage) {
  const repo = new Repo({
    network: [new WebSocketClientAdapter(url)],
    storage: storage ? new NodeFSStorageAdapter(path.join(tmp, name)) : undefined,
    enableRemoteHeadsGossiping: true,
  })
  const connected = new Promise(resolve => repo.networkSubsystem.once("peer", resolve))
  return { repo, connected }
}

/** Resolves when check() holds, re-checking on the handle's events. */
function until(handle, events, check) {
  return new Promise(resolve => {
    const poll = () => check() && (events.forEach(e => handle.off(e, poll)), resolve())
    events.forEach(e => handle.on(e, poll))
    poll()
  })
}

const a = connect("a", true)
await a.connected
const b = connect("b", true)
await b.connected
const serverStorageId = await serverRepo.storageId()
const bStorageId = await b.repo.storageId()

// A creates a document; wait until the server holds it.
const ha = a.repo.create({ name: "Test Resident", room: "12" })
await until(ha, ["remote-heads", "change"], () =>
  JSON.stringify(ha.getSyncInfo(serverStorageId)?.lastHeads) === JSON.stringify(ha.heads()))

// A asks to hear about B's heads; B finds and edits the document.
a.repo.subscribeToRemotes([bStorageId])
const hb = await b.repo.find(ha.url)
hb.change(d => {
  d.room = "14"
})
await until(ha, ["change"], () => ha.doc().room === "14")
await until(ha, ["remote-heads"], () => ha.getSyncInfo(bStorageId) !== undefined)

// Ephemeral gossip from A reaches B through the server.
const gotEphemeral = new Promise(resolve => hb.once("ephemeral-message", resolve))
ha.broadcast({ cursor: 5 })
await gotEphemeral

// A storage-less client asks for a document nobody has.
const c = connect("c", false)
await c.connected
await c.repo.find(stringifyAutomergeUrl({ documentId: new Uint8Array(16).fill(9) })).catch(() => {})

// A client offering only protocol "2" gets an error frame and is closed.
await new Promise(resolve => {
  const ws = new WebSocket(url)
  ws.on("open", () => ws.send(cbor.encode({ type: "join", senderId: "peer-future", peerMetadata: {}, supportedProtocolVersions: ["2"] })))
  ws.on("close", resolve)
})

for (const { repo } of [a, b, c]) repo.networkSubsystem.disconnect()
wss.close()
fs.rmSync(tmp, { recursive: true, force: true })

// Keep the file small: the first two frames of each direction and type suffice.
const seen = new Map()
const kept = frames.filter(f => {
  if (f.source !== "live") return true
  const kind = f.name.replace(/^live-\d+-/, "")
  seen.set(kind, (seen.get(kind) ?? 0) + 1)
  return seen.get(kind) <= 2
})

const versions = Object.fromEntries(
  ["@automerge/automerge-repo", "@automerge/automerge-repo-network-websocket", "@automerge/automerge", "cbor-x"].map(p => [
    p,
    JSON.parse(fs.readFileSync(path.join(here, "node_modules", p, "package.json"))).version,
  ]),
)
fs.mkdirSync(path.dirname(out), { recursive: true })
fs.writeFileSync(out, JSON.stringify({ generator: "syncd/interop/fixtures.mjs", versions, documentIds, frames: kept }, null, 1) + "\n")
console.log(`wrote ${kept.length} frames to ${path.relative(process.cwd(), out)}`)
process.exit(0)
