// A scriptable, unmodified automerge-repo client, for driving syncd (or
// server.mjs) from Go tests. It prints one JSON line per event on stdout.
//
//   node client.mjs [flags] <ws-url> [command-json ...]
//
// With commands in argv it runs them in order and exits (status 1 if any
// failed or timed out); without, it reads one JSON command per stdin line
// and exits at end of input. The URL may carry ?token=... as syncd expects.
//
// Flags:
//   --storage DIR        keep documents in DIR (default: none, so the client
//                        announces isEphemeral and the server keeps no sync state for it)
//   --retry MS           reconnect interval (default 5000, as automerge-repo)
//   --connect-timeout MS wait this long for the server's peer message
//                        before running commands (default 10000; 0 = don't wait)
//   --exit-on-error      exit with status 2 on the first error event
//
// Commands ("id" is an automerge URL or a bare document ID, or omitted for the
// document the previous command created or found; timeouts in ms, default 10000):
//   {"cmd":"create","doc":{...}}                  → created {url, documentId}
//   {"cmd":"find","id":ID}                        → doc {documentId, doc} | unavailable | timeout
//   {"cmd":"change","id":ID,"key":K,"value":V}    → changed {documentId, heads}
//   {"cmd":"set","id":ID,"path":[K,...],"value":V,"scalar":true}
//                                                → changed: any change at a path (maps), as any
//                                                   holder of a credential could make; with
//                                                   scalar, a string is a plain string value,
//                                                   not collaborative text (automerge 3's default)
//   {"cmd":"delete","id":ID,"path":[K,...]}       → changed: deletes the key at the path
//   {"cmd":"wait","id":ID,"key":K,"value":V}      → matched {documentId, doc} | timeout
//   {"cmd":"synced","id":ID}                      → synced {documentId, heads} once the server
//                                                   reports our heads (needs its storageId) | timeout
//   {"cmd":"broadcast","id":ID,"message":M}       → broadcast (ephemeral message to peers)
//   {"cmd":"quit"}
// Unprompted events: connected {peerId, peerMetadata}, disconnected {peerId},
// error {message, code?} (an error frame from the server, with its code if it
// sent one, or a failed connection),
// ephemeral {documentId, senderId, message}.
import readline from "node:readline"
import { isDeepStrictEqual } from "node:util"
import { Repo, cbor } from "@automerge/automerge-repo"
import { ImmutableString } from "@automerge/automerge"
import { WebSocketClientAdapter } from "@automerge/automerge-repo-network-websocket"
import { NodeFSStorageAdapter } from "@automerge/automerge-repo-storage-nodefs"
import { emit, flushReady } from "./lib.mjs"

const opts = { storage: null, retry: 5000, connectTimeout: 10000, exitOnError: false }
const positional = []
for (let args = process.argv.slice(2); args.length > 0; ) {
  const a = args.shift()
  if (a === "--storage") opts.storage = args.shift()
  else if (a === "--retry") opts.retry = Number(args.shift())
  else if (a === "--connect-timeout") opts.connectTimeout = Number(args.shift())
  else if (a === "--exit-on-error") opts.exitOnError = true
  else positional.push(a)
}
const [url, ...argvCommands] = positional
if (!url) {
  console.error("usage: node client.mjs [flags] <ws-url> [command-json ...]")
  process.exit(64)
}

function reportError(message, code) {
  emit({ event: "error", message, ...(code ? { code } : {}) })
  if (opts.exitOnError) process.exit(2)
}

// The stock adapter only debug-logs an error frame, and in Node it throws
// (crashing the process) when the handshake fails with anything but
// ECONNREFUSED, e.g. an HTTP 401. This subclass reports both and leaves the
// adapter's own reconnect logic untouched.
class ObservedClientAdapter extends WebSocketClientAdapter {
  constructor(url, retryInterval) {
    super(url, retryInterval)
    // onError is an instance field of the parent, bound by connect(), which
    // the Repo calls after construction: replacing it here is enough.
    this.onError = event => {
      const err = event.error ?? {}
      reportError(err.message ?? "connection failed", err.code)
    }
  }
  receiveMessage(bytes) {
    try {
      const msg = cbor.decode(new Uint8Array(bytes))
      if (msg?.type === "error") reportError(String(msg.message), msg.code)
    } catch {
      // undecodable: the parent drops it too
    }
    super.receiveMessage(bytes)
  }
}

const adapter = new ObservedClientAdapter(url, opts.retry)
const repo = new Repo({
  network: [adapter],
  storage: opts.storage ? new NodeFSStorageAdapter(opts.storage) : undefined,
})

let serverPeerId = null
const connected = new Promise(resolve => {
  repo.networkSubsystem.on("peer", ({ peerId, peerMetadata }) => {
    serverPeerId = peerId
    emit({ event: "connected", peerId, peerMetadata: peerMetadata ?? null })
    resolve()
  })
})
repo.networkSubsystem.on("peer-disconnected", ({ peerId }) => emit({ event: "disconnected", peerId }))

// Handles we have seen, so change/wait/synced reuse them and ephemeral
// messages are reported once per document.
const handles = new Map()
let last = null // the handle the previous command used, for commands without "id"
function track(handle) {
  if (!handles.has(handle.documentId)) {
    handles.set(handle.documentId, handle)
    handle.on("ephemeral-message", ({ senderId, message }) =>
      emit({ event: "ephemeral", documentId: handle.documentId, senderId, message }),
    )
  }
  return handle
}

/** A JSON copy of a document (automerge docs are proxies). */
const plain = doc => JSON.parse(JSON.stringify(doc))

/** Runs wait(resolve) until it resolves or ms pass; returns false on timeout. */
function within(ms, wait) {
  return new Promise(resolve => {
    const timer = setTimeout(() => resolve(false), ms)
    wait(() => {
      clearTimeout(timer)
      resolve(true)
    })
  })
}

async function handleFor(id, ms) {
  if (id === undefined) {
    if (!last) throw new Error("no id, and no earlier document")
    return last
  }
  const known = [...handles.values()].find(h => h.url === id || h.documentId === id)
  last = known ?? track(await repo.find(id, { signal: AbortSignal.timeout(ms) }))
  return last
}

/** Runs one command; returns false if it failed or timed out. */
async function run(cmd) {
  const ms = cmd.timeoutMs ?? 10000
  try {
    switch (cmd.cmd) {
      case "create": {
        const h = (last = track(repo.create(cmd.doc ?? {})))
        emit({ event: "created", url: h.url, documentId: h.documentId })
        return true
      }
      case "find": {
        const h = await handleFor(cmd.id, ms)
        emit({ event: "doc", documentId: h.documentId, doc: plain(h.doc()) })
        return true
      }
      case "change": {
        const h = await handleFor(cmd.id, ms)
        h.change(d => {
          d[cmd.key] = cmd.value
        })
        emit({ event: "changed", documentId: h.documentId, heads: h.heads() })
        return true
      }
      case "set":
      case "delete": {
        const h = await handleFor(cmd.id, ms)
        const path = cmd.path ?? []
        if (path.length === 0) throw new Error("set and delete need a path")
        h.change(d => {
          let obj = d
          for (const k of path.slice(0, -1)) obj = obj[k]
          const last = path[path.length - 1]
          if (cmd.cmd === "set") obj[last] = cmd.scalar && typeof cmd.value === "string" ? new ImmutableString(cmd.value) : cmd.value
          else delete obj[last]
        })
        emit({ event: "changed", documentId: h.documentId, heads: h.heads() })
        return true
      }
      case "wait": {
        const h = await handleFor(cmd.id, ms)
        const ok = () => isDeepStrictEqual(plain(h.doc())[cmd.key], cmd.value)
        const matched =
          ok() ||
          (await within(ms, done => {
            const check = () => ok() && (h.off("change", check), done())
            h.on("change", check)
          }))
        emit(matched ? { event: "matched", documentId: h.documentId, doc: plain(h.doc()) }
                     : { event: "timeout", cmd: "wait", documentId: h.documentId })
        return matched
      }
      case "synced": {
        // The Repo records, per storage ID, the heads a peer last reported.
        const h = await handleFor(cmd.id, ms)
        const storageId = serverPeerId && repo.getStorageIdOfPeer(serverPeerId)
        if (!storageId) {
          emit({ event: "error", message: "server sent no storageId; cannot tell what it holds" })
          return false
        }
        const same = () => isDeepStrictEqual(h.getSyncInfo(storageId)?.lastHeads ?? null, h.heads())
        const synced =
          same() ||
          (await within(ms, done => {
            const check = () => same() && (h.off("remote-heads", check), h.off("change", check), done())
            h.on("remote-heads", check)
            h.on("change", check)
          }))
        emit(synced ? { event: "synced", documentId: h.documentId, heads: h.heads() }
                    : { event: "timeout", cmd: "synced", documentId: h.documentId })
        return synced
      }
      case "broadcast": {
        const h = await handleFor(cmd.id, ms)
        h.broadcast(cmd.message)
        emit({ event: "broadcast", documentId: h.documentId })
        return true
      }
      case "quit":
        await shutdown(0)
        return true
      default:
        emit({ event: "bad-command", error: `unknown cmd ${JSON.stringify(cmd.cmd)}` })
        return false
    }
  } catch (err) {
    if (err?.name === "AbortError" || err?.name === "TimeoutError") {
      emit({ event: "timeout", cmd: cmd.cmd, id: cmd.id })
    } else if (/unavailable/i.test(err?.message ?? "")) {
      emit({ event: "unavailable", id: cmd.id })
    } else {
      emit({ event: "bad-command", cmd: cmd.cmd, error: String(err?.message ?? err) })
    }
    return false
  }
}

async function shutdown(code) {
  await flushReady(repo)
  repo.networkSubsystem.disconnect()
  process.exit(code)
}

function parse(line) {
  try {
    return JSON.parse(line)
  } catch (err) {
    emit({ event: "bad-command", error: `not JSON: ${err.message}` })
    return null
  }
}

if (opts.connectTimeout > 0 && !(await within(opts.connectTimeout, done => connected.then(done)))) {
  emit({ event: "timeout", cmd: "connect" })
  await shutdown(1)
}

let allOK = true
if (argvCommands.length > 0) {
  for (const line of argvCommands) {
    const cmd = parse(line)
    allOK = (cmd !== null && (await run(cmd))) && allOK
  }
} else {
  for await (const line of readline.createInterface({ input: process.stdin })) {
    if (line.trim() === "") continue
    const cmd = parse(line)
    if (cmd !== null) await run(cmd)
  }
}
await shutdown(allOK ? 0 : 1)
