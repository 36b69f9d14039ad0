#!/bin/sh
# explorer_demo_profiles: fill DIR with profiles for the browser test and
# for users trying the explorer. With the core's contprof_demo (a real
# program profiled through the core and its file exporter) it runs two
# instances with different tags (two ~3 s profiles each, enough samples
# for its known 3:1 CPU split to show); otherwise gen_profiles writes
# encoder-made profiles with the same functions.
#   demo_profiles.sh DIR GEN_PROFILES [CONTPROF_DEMO]
set -eu
DIR=$1 GEN=$2 DEMO=${3:-}
rm -rf "$DIR"
mkdir -p "$DIR"
# Files only: no agent or agentless upload from the caller's environment.
unset CONTPROF_AGENT_URL CONTPROF_AGENT_HOST CONTPROF_AGENT_PORT CONTPROF_API_KEY \
  DD_TRACE_AGENT_URL DD_AGENT_HOST DD_TRACE_AGENT_PORT DD_API_KEY
if [ -n "$DEMO" ] && [ -x "$DEMO" ]; then
  CONTPROF_OUTPUT_DIR="$DIR" CONTPROF_SERVICE=contprof-demo CONTPROF_ENV=demo CONTPROF_VERSION=1.0 \
    CONTPROF_UPLOAD_PERIOD=3 "$DEMO" 5.9 >"$DIR.a.log" 2>&1 &
  A=$!
  CONTPROF_OUTPUT_DIR="$DIR" CONTPROF_SERVICE=contprof-demo-b CONTPROF_ENV=staging CONTPROF_VERSION=2.0 \
    CONTPROF_UPLOAD_PERIOD=3 "$DEMO" 5.9 >"$DIR.b.log" 2>&1
  wait "$A"
else
  "$GEN" demo "$DIR"
fi
n=$(ls "$DIR"/*.json 2>/dev/null | wc -l)
[ "$n" -ge 2 ] || { echo "explorer_demo_profiles: only $n profiles written to $DIR" >&2; exit 1; }
echo "explorer_demo_profiles: $n profiles in $DIR"
