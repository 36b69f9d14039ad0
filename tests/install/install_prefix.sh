#!/usr/bin/env bash
# cmake --install <build> --prefix P into an empty P, then use what P holds:
# the JVM agent (demo app), the explorer (serves and lists a profile) and
# the Python package of each built interpreter (python -m contprof).
# Usage: install_prefix.sh <build-dir> <java-or-empty> <X.Y=python>...
set -euo pipefail
BUILD=$1; JAVA=$2; shift 2
P=$(mktemp -d); W=$(mktemp -d)
trap 'rm -rf "$P" "$W"; [ -n "${EXP:-}" ] && kill "$EXP" 2>/dev/null || true' EXIT
fail() { echo "FAIL: $*"; exit 1; }

cmake --install "$BUILD" --prefix "$P" >"$W/install.log" || { cat "$W/install.log"; fail "cmake --install"; }
[ -f "$P/include/contprof.h" ] || fail "no include/contprof.h"
[ -f "$P/lib/libcontprof_core.a" ] || fail "no lib/libcontprof_core.a"
# Nothing may land outside P (an absolute site-packages path would).
grep -- '-- Installing: ' "$W/install.log" | grep -v -- "-- Installing: $P/" && fail "files installed outside the prefix"

cat >"$W/app.py" <<'PY'
import time
def spin():
    t = time.process_time()
    while time.process_time() - t < 0.4:
        sum(i * i for i in range(500))
spin()
PY
for pv in "$@"; do
  ver=${pv%%=*}; py=${pv#*=}
  site="$P/lib/python$ver/site-packages"
  [ -d "$site/contprof" ] || fail "no $site/contprof"
  (cd "$W" && PYTHONPATH="$site" "$py" -m contprof --output-dir "$W/out" --service "py$ver" app.py) 2>"$W/py$ver.err" \
    || { cat "$W/py$ver.err"; fail "python $ver from the prefix"; }
  ls "$W/out"/py$ver.*.pprof.gz >/dev/null || fail "python $ver wrote no profile"
  echo "ok: python $ver from $site"
done

if [ -n "$JAVA" ] && [ -f "$BUILD/demo/java/DemoApp.class" ]; then
  [ -f "$P/lib/libcontprof_jvm.so" ] || fail "no lib/libcontprof_jvm.so"
  (cd "$W" && timeout 120 "$JAVA" -agentpath:"$P/lib/libcontprof_jvm.so"=output_dir="$W/out",service=inst \
     -cp "$BUILD/demo/java" DemoApp >"$W/jvm.out" 2>&1) || { cat "$W/jvm.out"; fail "java with the installed agent"; }
  ls "$W/out"/inst.*.pprof.gz >/dev/null || fail "the installed agent wrote no profile"
  echo "ok: JVM agent from $P/lib"
fi

if [ -x "$BUILD/explorer/contprof-explorer" ]; then
  [ -x "$P/bin/contprof-explorer" ] || fail "no bin/contprof-explorer"
  port_file="$W/port"
  "$P/bin/contprof-explorer" --listen 127.0.0.1:0 --data "$W/data" --import "$W/out" --port-file "$port_file" \
      >"$W/explorer.log" 2>&1 &
  EXP=$!
  for _ in $(seq 100); do [ -s "$port_file" ] && break; sleep 0.1; done
  [ -s "$port_file" ] || { cat "$W/explorer.log"; fail "the installed explorer did not start"; }
  n=$(curl -sf "http://127.0.0.1:$(cat "$port_file")/api/profiles" | grep -o '"id"' | wc -l)
  [ "$n" -ge 1 ] || fail "the installed explorer lists no profile"
  echo "ok: explorer from $P/bin lists $n profiles"
fi
echo "install_prefix: passed"
