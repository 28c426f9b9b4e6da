#!/usr/bin/env bash
# Proves the harness: the reference server, one client creating a document,
# a second finding and editing it, and the edit flowing back to the first.
#   bash demo.sh        (after npm ci / npm install in this folder)
set -euo pipefail
cd "$(dirname "$0")"
dir=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; rm -rf "$dir"' EXIT

node server.mjs 0 "$dir/server" >"$dir/server.out" &
pids+=($!)
until grep -q '^listening' "$dir/server.out"; do sleep 0.1; done
url="ws://127.0.0.1:$(awk '/^listening/{print $2}' "$dir/server.out")"

# A: create, wait until the server holds it, then wait for B's edit.
node client.mjs "$url" '{"cmd":"create","doc":{"name":"Ada","room":"12"}}' '{"cmd":"synced"}' \
  '{"cmd":"wait","key":"room","value":"14","timeoutMs":20000}' >"$dir/a.out" &
a=$!
pids+=($a)
until grep -q '"event":"synced"' "$dir/a.out"; do sleep 0.1; done
doc=$(grep -o '"url":"[^"]*"' "$dir/a.out" | cut -d'"' -f4)

# B: a second, storage-backed client finds the document, edits it, waits
# until the server holds the edit, then asks for a document nobody has.
node client.mjs --storage "$dir/b" "$url" "{\"cmd\":\"find\",\"id\":\"$doc\"}" \
  '{"cmd":"change","key":"room","value":"14"}' '{"cmd":"synced"}' \
  '{"cmd":"find","id":"automerge:3hTHBUkVgfmeQDJQ7h83XPt4zy9L"}' >"$dir/b.out" || true
wait "$a"
echo "--- A"; cat "$dir/a.out"
echo "--- B"; cat "$dir/b.out"
grep -q '"event":"matched"' "$dir/a.out" && grep -q '"event":"unavailable"' "$dir/b.out" && echo "demo: OK"
