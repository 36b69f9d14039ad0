#!/usr/bin/env bash
# contprof explorer — real-browser test driver.
#
#   run.sh EXPLORER_BIN SCRATCH_DIR
#
# Installs playwright-core from the committed lockfile (npm ci, once, into
# SCRATCH_DIR/npm; never downloads a browser: Debian's /usr/bin/chromium is
# used), starts the explorer on 127.0.0.1 with a free port and a fresh data
# dir, then runs explorer.test.js, which seeds it by POSTing the demo
# profiles (CONTPROF_DEMO_PROFILES: pprof.gz + .json sidecars written by the
# core's file exporter) and drives the pages (units.test.js, run first,
# checks the pages' formatting helpers). Screenshots land in
# SCRATCH_DIR/artifacts. Stops the explorer however the test ends.
set -euo pipefail

die() { echo "explorer_browser: FAIL: $*" >&2; exit 1; }

[ $# -eq 2 ] || die "usage: run.sh EXPLORER_BIN SCRATCH_DIR"
BIN=$(readlink -f "$1")
SCRATCH=$2
HERE=$(cd "$(dirname "$0")" && pwd)
CHROMIUM=${CONTPROF_CHROMIUM:-/usr/bin/chromium}
[ -x "$BIN" ] || die "explorer binary not found: $1"
[ -x "$CHROMIUM" ] || die "chromium not found at $CHROMIUM (apt-get install chromium)"
command -v node >/dev/null || die "node not found (apt-get install nodejs npm)"
[ -n "${CONTPROF_DEMO_PROFILES:-}" ] || die "CONTPROF_DEMO_PROFILES is not set (the ctest fixture explorer_demo_profiles sets it)"
[ -d "$CONTPROF_DEMO_PROFILES" ] || die "no demo profiles at $CONTPROF_DEMO_PROFILES"

mkdir -p "$SCRATCH"
SCRATCH=$(cd "$SCRATCH" && pwd)

# The pages' pure helpers first: plain node, no browser, no server.
node "$HERE/units.test.js" || die "unit tests of the page helpers failed"

# playwright-core: a node_modules next to this script wins (developer
# checkouts); otherwise npm ci into the scratch dir, redone only when the
# lockfile changed.
if [ -d "$HERE/node_modules/playwright-core" ]; then
  NODE_DIR=$HERE
else
  NODE_DIR=$SCRATCH/npm
  if ! cmp -s "$HERE/package-lock.json" "$NODE_DIR/package-lock.json" ||
     [ ! -d "$NODE_DIR/node_modules/playwright-core" ]; then
    command -v npm >/dev/null || die "npm not found (apt-get install npm)"
    rm -rf "$NODE_DIR"
    mkdir -p "$NODE_DIR"
    cp "$HERE/package.json" "$HERE/package-lock.json" "$NODE_DIR/"
    (cd "$NODE_DIR" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 timeout 60 \
       npm ci --no-audit --no-fund --loglevel=error >npm.log 2>&1) ||
      { cat "$NODE_DIR/npm.log" >&2; die "npm ci failed (needs the npm registry)"; }
  fi
fi

rm -rf "$SCRATCH/data" "$SCRATCH/artifacts" "$SCRATCH/chromium-profile" "$SCRATCH/chromium-profile-viewer" "$SCRATCH/viewer-src" "$SCRATCH/port"
mkdir -p "$SCRATCH/data" "$SCRATCH/artifacts"

"$BIN" --listen 127.0.0.1:0 --port-file "$SCRATCH/port" --data "$SCRATCH/data" \
  >"$SCRATCH/explorer.log" 2>&1 &
PID=$!
stop() {
  if kill -0 "$PID" 2>/dev/null; then
    kill -TERM "$PID" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$PID" 2>/dev/null || true
  fi
  wait "$PID" 2>/dev/null || true
}
trap stop EXIT

for _ in $(seq 100); do
  [ -s "$SCRATCH/port" ] && break
  kill -0 "$PID" 2>/dev/null || { cat "$SCRATCH/explorer.log" >&2; die "explorer exited at start"; }
  sleep 0.1
done
[ -s "$SCRATCH/port" ] || die "explorer wrote no port file within 10 s"
PORT=$(tr -dc 0-9 <"$SCRATCH/port")

status=0
NODE_PATH="$NODE_DIR/node_modules" \
EXPLORER_URL="http://127.0.0.1:$PORT" \
DEMO_PROFILES="$CONTPROF_DEMO_PROFILES" \
ARTIFACTS="$SCRATCH/artifacts" \
USER_DATA_DIR="$SCRATCH/chromium-profile" \
CHROMIUM="$CHROMIUM" \
  timeout -k 5 80 node "$HERE/explorer.test.js" || status=$?
# The viewer features (filters, sandwich, source lines, a 5,000-frame
# stack, three-host metrics) on the same explorer, with their own data.
[ "$status" -eq 0 ] && {
  NODE_PATH="$NODE_DIR/node_modules" EXPLORER_URL="http://127.0.0.1:$PORT" ARTIFACTS="$SCRATCH/artifacts" \
  USER_DATA_DIR="$SCRATCH/chromium-profile" CHROMIUM="$CHROMIUM" \
    timeout -k 5 80 node "$HERE/viewer.test.js" || status=$?
}

kill -0 "$PID" 2>/dev/null || { status=1; echo "explorer_browser: FAIL: the explorer died during the test" >&2; }
if [ "$status" -ne 0 ]; then
  [ "$status" -eq 124 ] && echo "explorer_browser: FAIL: timed out after 80 s" >&2
  echo "--- explorer log (last 30 lines) ---" >&2
  tail -n 30 "$SCRATCH/explorer.log" >&2 || true
  exit 1
fi
echo "explorer_browser: PASS (artifacts in $SCRATCH/artifacts)"
