// The official JavaScript sync server, set up as the automerge sync-server
// package does it: one Repo, a websocket server adapter, storage on disk, and
// a share policy that never offers documents unasked (it only answers peers
// that request or sync a document). Used to compare syncd with the reference.
//
//   node server.mjs [port] [data-dir]      (or PORT, DATA_DIR, HOST)
//
// Port 0 picks a free port. Prints "listening <port>" once it accepts
// connections. SIGINT/SIGTERM flush the Repo to disk, then exit.
import os from "node:os"
import { WebSocketServer } from "ws"
import { Repo } from "@automerge/automerge-repo"
import { NodeWSServerAdapter } from "@automerge/automerge-repo-network-websocket"
import { NodeFSStorageAdapter } from "@automerge/automerge-repo-storage-nodefs"
import { flushReady } from "./lib.mjs"

const port = Number(process.argv[2] ?? process.env.PORT ?? 3030)
const dataDir = process.argv[3] ?? process.env.DATA_DIR ?? ".amrg"
const host = process.env.HOST ?? "127.0.0.1"

const wss = new WebSocketServer({ port, host })
const repo = new Repo({
  network: [new NodeWSServerAdapter(wss)],
  storage: new NodeFSStorageAdapter(dataDir),
  peerId: `storage-server-${os.hostname()}`,
  sharePolicy: async () => false,
})

wss.on("listening", () => console.log(`listening ${wss.address().port}`))
wss.on("error", err => {
  console.error(`server: ${err.message}`)
  process.exit(1)
})

async function stop() {
  await flushReady(repo) // documents are saved with a debounce; write what is pending
  wss.close()
  process.exit(0)
}
process.on("SIGINT", stop)
process.on("SIGTERM", stop)
