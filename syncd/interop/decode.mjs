// Decodes frames the way automerge-repo does, for Go tests that check what a
// JavaScript peer makes of frames Haven encodes.
//
//   node decode.mjs < frames     (one hex-encoded frame per line)
//
// For each line prints {"message": ..., "isRepoMessage": bool} or {"error": "..."}.
// The message is made JSON-safe by toJSONable: a BigInt (an 8-byte integer,
// which automerge-repo cannot use) shows up as {"$bigint": "..."}.
import readline from "node:readline"
import { cbor, isRepoMessage } from "@automerge/automerge-repo"
import { emit, toJSONable } from "./lib.mjs"

for await (const line of readline.createInterface({ input: process.stdin })) {
  if (line.trim() === "") continue
  try {
    const message = cbor.decode(Buffer.from(line.trim(), "hex"))
    emit({ message: toJSONable(message), isRepoMessage: isRepoMessage(message) })
  } catch (err) {
    emit({ error: String(err?.message ?? err) })
  }
}
