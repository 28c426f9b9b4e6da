// Helpers shared by the interop scripts.

/** Writes one event as a JSON line on stdout: the scripts' only output channel. */
export function emit(event) {
  process.stdout.write(JSON.stringify(event) + "\n")
}

/**
 * Makes a decoded CBOR value JSON-safe without losing what the Go tests check:
 * byte arrays become {"$bytes": hex}, BigInts {"$bigint": "123"} (cbor-x
 * returns those for 8-byte integers, which automerge-repo cannot use), and
 * undefined {"$undefined": true} (JSON would silently drop the key).
 */
export function toJSONable(v) {
  if (v === undefined) return { $undefined: true }
  if (typeof v === "bigint") return { $bigint: v.toString() }
  if (v instanceof Uint8Array) return { $bytes: Buffer.from(v).toString("hex") }
  if (Array.isArray(v)) return v.map(toJSONable)
  if (v !== null && typeof v === "object") {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, toJSONable(x)]))
  }
  return v
}

/** Reads a duration in milliseconds from an environment variable. */
export function envMs(name, fallback) {
  const v = Number(process.env[name])
  return Number.isFinite(v) && v > 0 ? v : fallback
}

/**
 * Saves every loaded document. Repo.flush() alone throws "DocHandle is not
 * ready" once any handle is unavailable (a document someone asked for and
 * nobody had), so flush only the ready ones.
 */
export function flushReady(repo) {
  const ready = Object.values(repo.handles).filter(h => h.isReady())
  return repo.flush(ready.map(h => h.documentId))
}
