#!/usr/bin/env bash
# The whole test suite: installs dependencies, builds everything with
# -Werror (core, both front ends for every interpreter/JDK found, explorer,
# the ASan/UBSan core tests, the fuzz target) and runs every test with ctest.
# Usage: bash ci/test.sh [build-dir]      (default: build-ci)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build-ci}

bash ci/deps.sh
JOBS=$(nproc 2>/dev/null || echo 2)
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCONTPROF_WERROR=ON >"$BUILD.configure.log" 2>&1 \
  || { cat "$BUILD.configure.log"; exit 1; }
grep -E '^-- contprof' "$BUILD.configure.log" || true
cmake --build "$BUILD" -j"$JOBS"
cd "$BUILD"
# Known-answer tests compare shares inside one process, so two at a time is
# safe on a 2-core machine; timing-sensitive tests are marked RUN_SERIAL.
ctest --output-on-failure -j"$JOBS" --timeout 600
