#!/bin/bash
# run.sh — compile and run DemoApp under the contprof JVM agent, then
# print the top functions of each profile type.
# usage: demo/java/run.sh [BUILD_DIR] [SECONDS] [JAVA_HOME]
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
BUILD=${1:-$HERE/../../build}
SECONDS_TO_RUN=${2:-20}
JDK=${3:-${JAVA_HOME:-/usr/lib/jvm/java-17-openjdk-amd64}}
AGENT=$BUILD/jvm_agent/libcontprof_jvm.so
OUT=$(mktemp -d /tmp/contprof-demo.XXXXXX)

[ -f "$AGENT" ] || { echo "build the agent first: cmake --build $BUILD --target contprof_jvm" >&2; exit 1; }
"$JDK/bin/javac" -d "$OUT/classes" "$HERE/DemoApp.java"
"$JDK/bin/java" -agentpath:"$AGENT=output_dir=$OUT/profiles,upload_period=10,service=contprof-demo" \
    -cp "$OUT/classes" DemoApp "$SECONDS_TO_RUN"
for t in cpu-time wall-time alloc-space heap-space; do
    echo "== $t (all profiles) =="
    go tool pprof -top -sample_index=$t "$OUT"/profiles/*.pprof.gz 2>/dev/null | sed -n '4,14p'
done
echo "profiles in $OUT/profiles"
