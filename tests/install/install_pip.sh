#!/usr/bin/env bash
# `pip install --no-index <checkout>` in a fresh venv of each interpreter
# given (offline: the in-tree backend needs nothing from PyPI), then
# `python -m contprof app.py` writes a profile, pip lists the package, and
# `pip uninstall` removes every file it installed.
# Usage: install_pip.sh <source-dir> <X.Y=python>...
set -euo pipefail
SRC=$1; shift
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
cat >"$W/app.py" <<'PY'
import time
def spin():
    t = time.process_time()
    while time.process_time() - t < 0.3:
        sum(i * i for i in range(500))
spin()
PY
# The oldest and the newest interpreter built (pip 23.0 .. 24), and Debian's
# own python3 when it has headers and venv: enough to cover the pip range.
pick=()
[ $# -ge 1 ] && pick+=("$1")
[ $# -ge 2 ] && pick+=("${@: -1}")
if [ -x /usr/bin/python3 ] && /usr/bin/python3 -c 'import ensurepip, sysconfig, os, sys; sys.exit(0 if os.path.exists(sysconfig.get_paths()["include"] + "/Python.h") else 1)' 2>/dev/null; then
  pick+=("debian=/usr/bin/python3")
fi
for pv in "${pick[@]}"; do
  ver=${pv%%=*}; py=${pv#*=}
  v="$W/venv-$ver"
  "$py" -m venv "$v" || fail "venv for $py"
  "$v/bin/pip" install --no-index --disable-pip-version-check -q "$SRC" >"$W/pip-$ver.log" 2>&1 \
    || { tail -30 "$W/pip-$ver.log"; fail "pip install with $py"; }
  listed=$("$v/bin/pip" list --disable-pip-version-check 2>/dev/null)
  grep -q '^contprof ' <<<"$listed" || fail "pip list does not show contprof ($py)"
  (cd "$W" && "$v/bin/python" -m contprof --output-dir "$W/out-$ver" --service app app.py) >"$W/run-$ver.log" 2>&1 \
    || { cat "$W/run-$ver.log"; fail "python -m contprof from the venv ($py)"; }
  ls "$W/out-$ver"/app.*.pprof.gz >/dev/null 2>&1 || fail "no profile written ($py)"
  site=$("$v/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["platlib"])')
  "$v/bin/pip" uninstall -y --disable-pip-version-check contprof >/dev/null || fail "pip uninstall ($py)"
  [ ! -e "$site/contprof" ] || fail "pip uninstall left $site/contprof"
  left=$(ls "$site")
  grep -qi '^contprof' <<<"$left" && fail "pip uninstall left dist-info in $site"
  echo "ok: pip install/run/uninstall with $py ($ver)"
done
echo "install_pip: passed"
