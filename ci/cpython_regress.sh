#!/usr/bin/env bash
# CPython's own regression tests, run twice per interpreter: once plain, once
# with every Python process that reads the environment auto-profiled (a
# sitecustomize.py doing `import contprof.auto`, on PYTHONPATH next to the
# built package). Any test case that passes plain and fails profiled is a
# profiler bug; the script prints a version x test table and exits 1 then.
#
#   ci/cpython_regress.sh [--quick] BUILD_DIR PYTHON...
#
# BUILD_DIR is a CMake build tree whose python/<X.Y>/ holds the package for
# each PYTHON (an interpreter that ships Lib/test, e.g. a pyenv install).
# --quick runs a small subset (fork, wait, select, eintr, subprocess fd
# passing) for ctest; the default is the full selection below. Work files go
# to $CPREGRESS_WORK (default: a temp dir, removed on success);
# $CPREGRESS_GROUPS (lines of "tests... [-- match patterns...]") replaces
# the selection.
# Children started with -I/-E (assert_python_ok and friends) ignore
# PYTHONPATH and so run unprofiled: that is CPython's choice, not ours.
set -euo pipefail

quick=0
if [ "${1:-}" = "--quick" ]; then quick=1; shift; fi
if [ $# -lt 2 ]; then
  echo "usage: $0 [--quick] BUILD_DIR PYTHON..." >&2; exit 2
fi
build=$(cd "$1" && pwd); shift
jobs=${CPREGRESS_JOBS:-2}
work=${CPREGRESS_WORK:-$(mktemp -d "${TMPDIR:-/tmp}/cpregress.XXXXXX")}
mkdir -p "$work"
here=$(cd "$(dirname "$0")" && pwd)

# One group per regrtest invocation: "tests... [-- match patterns...]".
# Slices of the long packages are chosen by test class (regrtest -m).
groups_for() {  # $1 = X.Y
  local minor=${1#3.}
  if [ -n "${CPREGRESS_GROUPS:-}" ]; then  # one group per line, as below
    printf '%s\n' "$CPREGRESS_GROUPS"
    return
  fi
  if [ "$quick" = 1 ]; then
    echo "test_fork1 test_wait4 test_eintr"
    echo "test_subprocess -- *pass_fds* *close_fds* *leak_fast_process_del_killed*"
    return
  fi
  local capi=test_capi
  [ "$minor" -ge 12 ] && capi="test_capi.test_misc"
  echo "test_subprocess test_os test_signal test_threading test_eintr test_tracemalloc test_sys test_faulthandler"
  echo "test_socket test_select test_selectors test_fork1 test_wait4 test_resource test_gc test_weakref $capi"
  echo "test_asyncio.test_subprocess test_asyncio.test_unix_events test_asyncio.test_events test_asyncio.test_tasks"
  # 3.11.7's regrtest takes test_concurrent_futures and
  # test_multiprocessing_fork for split directories, which pyenv's 3.11.7
  # install does not have (nor the files): not run on 3.11.
  [ "$minor" != 11 ] && echo "test_concurrent_futures" &&
    echo "test_multiprocessing_fork -- *WithProcessesTestProcess* *WithProcessesTestPool *WithProcessesTestQueue* *WithProcessesTestLock* *_TestImportStar*"
  return 0
}

run_group() {  # $1 py, $2 label (plain|profiled), $3 index, $4 group line
  local py=$1 label=$2 idx=$3 line=$4 tests matches args=() envs=(-u PYTHONPATH)
  if [ "$label" = profiled ]; then
    envs=(PYTHONPATH="$work/$ver/site:$pkg" CONTPROF_OUTPUT_DIR="$work/$ver/profiles"
          CONTPROF_UPLOAD_PERIOD="${CPREGRESS_UPLOAD_PERIOD:-5}" CONTPROF_LOG_LEVEL=warn)
  fi
  tests=${line%% -- *}
  matches=""
  [ "$line" != "$tests" ] && matches=${line#* -- }
  for m in $matches; do args+=(-m "$m"); done
  # Deep recursion inside except*: minutes of CPU on a loaded machine, it
  # hits the worker timeout with or without the profiler.
  args+=(-i test_print_exception_gh_102056)
  # AF_VSOCK has no network namespace and test_socket binds a fixed port
  # (1234): two runs at once on a host (another interpreter's, or another
  # job's) connect to each other's servers and hang in accept() until the
  # worker timeout.
  args+=(-i '*VSOCK*')
  local out=$work/$ver/$label.$idx
  rm -rf "$out.xml" "$out.log" "$out.tmp"; mkdir -p "$out.tmp"
  # shellcheck disable=SC2086
  ( cd "$out.tmp" && env "${envs[@]}" TMPDIR="$out.tmp" nice -n 10 "$py" -m test -j"$jobs" --timeout "${CPREGRESS_TIMEOUT:-600}" \
      --junit-xml "$out.xml" "${args[@]}" $tests ) >"$out.log" 2>&1 || true
  rm -rf "$out.tmp"
}

status=0
for py in "$@"; do
  ver=$("$py" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
  pkg=$build/python/$ver
  if [ ! -d "$pkg/contprof" ]; then
    echo "cpython_regress: no package for $ver in $pkg (build contprof_py${ver/./})" >&2; exit 2
  fi
  mkdir -p "$work/$ver/site" "$work/$ver/profiles"
  printf 'import contprof.auto\n' >"$work/$ver/site/sitecustomize.py"
  idx=0
  while IFS= read -r line; do
    idx=$((idx + 1))
    run_group "$py" plain "$idx" "$line"
    run_group "$py" profiled "$idx" "$line"
  done < <(groups_for "$ver")
  nprof=$(find "$work/$ver/profiles" -name '*.pprof.gz' | wc -l)
  echo "cpython_regress: $ver wrote $nprof profiles"
  if [ "$nprof" -eq 0 ]; then
    echo "cpython_regress: $ver profiled run wrote no profile: the profiler did not run" >&2
    status=1
  fi
done

if ! python3 "$here/cpython_regress_compare.py" "$work"; then
  status=1
  if [ "$quick" = 1 ] && [ "${CPREGRESS_RETRIED:-0}" = 0 ]; then
    # Timing tests (test_eintr) can miss on a loaded machine: a difference
    # counts only if it is there again on a second run of both sides.
    echo "cpython_regress: retrying once"
    CPREGRESS_RETRIED=1 CPREGRESS_WORK="$work/retry" "$0" --quick "$build" "$@" && status=0
  fi
fi
if [ "$status" = 0 ] && [ -z "${CPREGRESS_WORK:-}" ]; then rm -rf "$work"; else echo "cpython_regress: work files in $work"; fi
exit $status
