#!/usr/bin/env bash
# The main job on its embedded default: build contprof, profile the bundled
# demo apps (Python, and Java when a JDK is present) with profiles written to
# ./profiles, show where they are and what they say, and serve them in the
# local explorer.
# Usage: bash ci/demo.sh          (stop the explorer: bash ci/demo.sh stop)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD=$ROOT/build
PORT=${CONTPROF_EXPLORER_PORT:-8127}
PIDFILE=$BUILD/explorer.pid

stop_explorer() {
  if [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
    kill "$(cat "$PIDFILE")"; echo "explorer stopped"
  fi
  rm -f "$PIDFILE"
}
if [ "${1:-}" = stop ]; then stop_explorer; exit 0; fi

bash ci/deps.sh
PY=$(python3 -c 'import sys; print(sys.executable)')
PYVER=$("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
echo "== building contprof (core, Python $PYVER extension, JVM agent, explorer) in $BUILD"
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCONTPROF_PYTHONS="$PY" \
  -DCONTPROF_SANITIZE_TESTS=OFF >"$BUILD.configure.log" 2>&1 || { cat "$BUILD.configure.log"; exit 1; }
cmake --build "$BUILD" -j"$(nproc)" >"$BUILD.build.log" 2>&1 || { tail -40 "$BUILD.build.log"; exit 1; }

OUT=$ROOT/profiles
mkdir -p "$OUT"
echo
echo "== profiling demo/python/demo.py (python -m contprof, defaults: profiles go to ./profiles)"
CONTPROF_SERVICE=demo-python CONTPROF_ENV=demo CONTPROF_VERSION=1.0.0 CONTPROF_UPLOAD_PERIOD=5 PYTHONPATH="$BUILD/python/$PYVER" \
  "$PY" -m contprof demo/python/demo.py

JAVA=/usr/lib/jvm/java-17-openjdk-amd64/bin/java
AGENT=$BUILD/jvm_agent/libcontprof_jvm.so
if [ -x "$JAVA" ] && [ -f "$AGENT" ]; then
  echo
  echo "== profiling demo/java (java -agentpath:$AGENT=service=demo-java)"
  "$JAVA" -agentpath:"$AGENT"=service=demo-java,env=demo,version=1.0.0,upload_period=5 -cp "$BUILD/demo/java" DemoApp
fi

# Every profile of the demo's run (newest pid), merged by pprof.
latest=$(ls -t "$OUT"/demo-python.*.pprof.gz 2>/dev/null | head -1 || true)
if [ -n "$latest" ] && command -v go >/dev/null; then
  pid=$(basename "$latest" | cut -d. -f2)
  echo
  echo "== what the Python run's profiles say (go tool pprof -top -sample_index=cpu-time $OUT/demo-python.$pid.*.pprof.gz)"
  export GOCACHE=$BUILD/.gocache HOME=${HOME:-$BUILD}
  go tool pprof -top -sample_index=cpu-time "$OUT"/demo-python."$pid".*.pprof.gz 2>/dev/null | head -16
fi

echo
echo "== explorer"
stop_explorer
"$BUILD/explorer/contprof-explorer" --listen 127.0.0.1:"$PORT" --data "$BUILD/explorer-data" \
  --import "$OUT" >"$BUILD/explorer.log" 2>&1 &
echo $! >"$PIDFILE"
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$PORT/api/profiles" >/dev/null 2>&1 && break; sleep 0.1; done
n=$(curl -sf "http://127.0.0.1:$PORT/api/profiles" | "$PY" -c 'import json,sys; d=json.load(sys.stdin); print(d.get("total", len(d.get("profiles", []))))' 2>/dev/null || echo "?")
echo "profiles: $OUT ($n indexed by the explorer)"
echo "open http://127.0.0.1:$PORT/ in a browser (explorer log: $BUILD/explorer.log; stop it: bash ci/demo.sh stop)"
