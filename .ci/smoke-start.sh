#!/usr/bin/env bash
# The README's first command, `npm ci && npm start`, on whatever node is first on PATH: the
# webhook must come up on :8443 with a generated development certificate and decide the README's
# example review. Used by .ci/run on the machine's own Node.js (20 on a fresh machine), whose
# `npm ci` has just run.
set -euo pipefail
cd "$(dirname "$0")/.."
port=${PORT:-8443}
log=$(mktemp)
# Its own process group: npm runs the server through a shell and does not pass SIGTERM on, so
# killing npm alone left `node dist/bundle/server.mjs` holding the port after the smoke.
PORT=$port setsid npm start >"$log" 2>&1 &
pid=$!
stop() {
  kill -TERM -- "-$pid" 2>/dev/null || true
  for _ in $(seq 1 30); do kill -0 -- "-$pid" 2>/dev/null || break; sleep 1; done
  kill -KILL -- "-$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}
trap stop EXIT
for _ in $(seq 1 120); do
  if [ -f certs/dev/tls.crt ] && curl -sf --cacert certs/dev/tls.crt "https://localhost:$port/healthz" >/dev/null 2>&1; then
    break
  fi
  kill -0 "$pid" 2>/dev/null || { cat "$log"; echo "smoke: npm start exited before answering" >&2; exit 1; }
  sleep 1
done
answer=$(curl -sf --cacert certs/dev/tls.crt "https://localhost:$port/validate" \
  -H 'content-type: application/json' -d @examples/review-denied.json) ||
  { cat "$log"; echo "smoke: /validate did not answer" >&2; exit 1; }
echo "$answer" | grep -q '"allowed":false' ||
  { echo "smoke: examples/review-denied.json was not denied: $answer" >&2; exit 1; }
echo "smoke: npm start on node $(node --version) served /healthz and denied examples/review-denied.json"
