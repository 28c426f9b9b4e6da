// A fresh, unmodified automerge-repo client that fetches documents it holds
// nothing of, as a new browser tab would: every find at once (or, with
// --at-once N, N finds outstanding at a time), then (with --edit) one change
// to each, sent back. It watches the frames the server sends so that a test
// can see how each document arrived. One JSON line per event on stdout.
//
//   node fetch.mjs [--edit KEY=VALUE] [--at-once N] <ws-url> <document-id> ...
//
// automerge-repo calls a document unavailable once its handle has waited a
// minute for it, and the client loads what it is sent one document at a
// time: asked for more large documents at once than it can load in a
// minute, it fails the last of them whatever the server does. --at-once
// keeps each wait within what the client itself can load.
//
// Events, in order:
//   connected {peerId}                                once the server's peer message arrives
//   doc {documentId, heads, frames, first, chunks, bytes}
//                                                     one per document once it is ready: heads in
//                                                     hex; frames, the sync messages about it the
//                                                     server had sent by then; first, the type byte
//                                                     (hex) of the first; chunks, how many change
//                                                     chunks that one carried; bytes, their sizes
//   fetched {docs, ms, cpuMs}                         every document ready; ms from the first find,
//                                                     cpuMs this process's CPU time meanwhile
//   edited {documentId, heads}                        (--edit) KEY set to VALUE, a plain string, and
//                                                     the server reports holding the new heads
//   unavailable {documentId} | timeout {documentId} | error {message}
// It then waits for the end of stdin (so the caller decides when the
// session ends) and exits, with status 1 if anything failed.
import { Repo, cbor } from "@automerge/automerge-repo"
import { ImmutableString, getHeads } from "@automerge/automerge"
import { WebSocketClientAdapter } from "@automerge/automerge-repo-network-websocket"
import { emit } from "./lib.mjs"

let edit = null
let atOnce = Infinity
const positional = []
for (let args = process.argv.slice(2); args.length > 0; ) {
  const a = args.shift()
  if (a === "--edit") {
    const kv = args.shift() ?? ""
    const i = kv.indexOf("=")
    if (i <= 0) {
      console.error("--edit wants KEY=VALUE")
      process.exit(64)
    }
    edit = { key: kv.slice(0, i), value: kv.slice(i + 1) }
  } else if (a === "--at-once") {
    atOnce = Number(args.shift())
    if (!Number.isInteger(atOnce) || atOnce <= 0) {
      console.error("--at-once wants a positive whole number")
      process.exit(64)
    }
  } else positional.push(a)
}
const [url, ...ids] = positional
if (!url || ids.length === 0) {
  console.error("usage: node fetch.mjs [--edit KEY=VALUE] [--at-once N] <ws-url> <document-id> ...")
  process.exit(64)
}
const timeoutMs = 120000

// Per document, the sync messages the server sent: [type byte, chunk count].
const frames = new Map()

/** The type byte and change chunk count of an encoded sync message. */
function describe(data) {
  let off = 1
  const uleb = () => {
    let v = 0, shift = 0, b
    do {
      b = data[off++]
      v += (b & 0x7f) * 2 ** shift
      shift += 7
    } while (b & 0x80)
    return v
  }
  // (Each skip reads its length first: in "off += uleb()" the old off
  // would be added to.)
  const skip = n => { off += n }
  const hashes = () => skip(32 * uleb())
  hashes() // heads
  hashes() // need
  for (let n = uleb(); n > 0; n--) {
    hashes() // last sync
    skip(uleb()) // bloom filter
  }
  const sizes = []
  for (let n = uleb(); n > 0; n--) {
    const len = uleb()
    sizes.push(len)
    skip(len)
  }
  return { type: data[0], sizes }
}

class WatchedAdapter extends WebSocketClientAdapter {
  receiveMessage(bytes) {
    try {
      const msg = cbor.decode(new Uint8Array(bytes))
      if (msg?.type === "error") emit({ event: "error", message: String(msg.message), code: msg.code })
      if ((msg?.type === "sync" || msg?.type === "request") && msg.data) {
        const list = frames.get(msg.documentId) ?? []
        list.push(describe(msg.data))
        frames.set(msg.documentId, list)
      }
    } catch {
      // undecodable: the parent drops it too
    }
    super.receiveMessage(bytes)
  }
}

const repo = new Repo({ network: [new WatchedAdapter(url, 5000)] })
let serverPeerId = null
await new Promise((resolve, reject) => {
  const timer = setTimeout(() => reject(new Error("no peer message")), 20000)
  repo.networkSubsystem.on("peer", ({ peerId }) => {
    serverPeerId = peerId
    clearTimeout(timer)
    emit({ event: "connected", peerId })
    resolve()
  })
}).catch(err => {
  emit({ event: "timeout", message: err.message })
  process.exit(1)
})

let failed = false
const start = performance.now()
const cpu0 = process.cpuUsage()
// Finds wait here for one of the atOnce places; each frees its place once
// its document is ready or has failed.
let outstanding = 0
const waiting = []
const place = () => {
  if (outstanding < atOnce) {
    outstanding++
    return Promise.resolve()
  }
  return new Promise(resolve => waiting.push(resolve))
}
const free = () => {
  const next = waiting.shift()
  if (next) next()
  else outstanding--
}
const handles = (
  await Promise.all(
    ids.map(async id => {
      await place()
      try {
        const h = await repo.find(id, { signal: AbortSignal.timeout(timeoutMs) })
        const seen = frames.get(h.documentId) ?? []
        const first = seen[0]
        emit({
          event: "doc",
          documentId: h.documentId,
          heads: getHeads(h.doc()), // hex strings
          frames: seen.length,
          first: first ? first.type.toString(16) : "",
          chunks: first ? first.sizes.length : 0,
          bytes: first ? first.sizes : [],
        })
        return h
      } catch (err) {
        failed = true
        const timedOut = err?.name === "AbortError" || err?.name === "TimeoutError"
        emit({ event: timedOut ? "timeout" : "unavailable", documentId: id, message: String(err?.message ?? err) })
        return null
      } finally {
        free()
      }
    }),
  )
).filter(Boolean)
const cpu = process.cpuUsage(cpu0)
emit({ event: "fetched", docs: handles.length, ms: Math.round(performance.now() - start), cpuMs: Math.round((cpu.user + cpu.system) / 1000) })

if (edit) {
  const storageId = repo.getStorageIdOfPeer(serverPeerId)
  await Promise.all(
    handles.map(h => {
      h.change(d => {
        d[edit.key] = new ImmutableString(edit.value)
      })
      const want = h.heads()
      const same = () => {
        const got = storageId && h.getSyncInfo(storageId)?.lastHeads
        return got && got.length === want.length && got.every(x => want.includes(x))
      }
      return new Promise(resolve => {
        const timer = setTimeout(() => {
          failed = true
          emit({ event: "timeout", documentId: h.documentId, cmd: "edit" })
          resolve()
        }, timeoutMs)
        const check = () => {
          if (!same()) return
          clearTimeout(timer)
          h.off("remote-heads", check)
          emit({ event: "edited", documentId: h.documentId, heads: getHeads(h.doc()) })
          resolve()
        }
        h.on("remote-heads", check)
        check()
      })
    }),
  )
}

process.stdin.resume()
await new Promise(resolve => process.stdin.on("end", resolve))
repo.networkSubsystem.disconnect()
process.exit(failed ? 1 : 0)
