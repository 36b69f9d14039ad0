#!/bin/bash
# run_case.sh — one end-to-end JVM agent test: runs JvmTarget under the agent
# (or as the case says) and asserts on the pprof it wrote with pprof_check.
# usage: run_case.sh JDK_HOME AGENT CLASSES PLUGIN_CLASSES CHECKER WORKDIR CASE
set -u
JDK=$1 AGENT=$2 CLASSES=$3 PLUGIN=$4 CHECK=$5 W=$6 CASE=$7
JAVA="$JDK/bin/java"
VER=$("$JAVA" -XshowSettings:properties -version 2>&1 | sed -n 's/.*java.specification.version = //p')
rm -rf "$W" && mkdir -p "$W/prof"
OPTS="output_dir=$W/prof,upload_period=1"

fail() { echo "FAIL($CASE, JDK $VER): $*"; exit 1; }
# Whatever this script started in the background ends with it.
BG_PIDS=""
trap 'for p in $BG_PIDS; do kill "$p" 2>/dev/null; done' EXIT

# run EXPECTED_EXIT java-args... ; stdout+stderr in $W/out.txt, time in $ELAPSED_MS
run() {
    local want=$1; shift
    local t0=$(date +%s%N)
    timeout 60 "$JAVA" "$@" >"$W/out.txt" 2>&1
    local rc=$?
    ELAPSED_MS=$(( ($(date +%s%N) - t0) / 1000000 ))
    cat "$W/out.txt"
    echo "exit $rc after ${ELAPSED_MS} ms"
    [ "$rc" = "$want" ] || fail "exit code $rc, expected $want"
}

check() { "$CHECK" "$W/prof" "$@" || fail "profile assertions"; }
said_where() { grep -q "contprof: profiles written to $W/prof" "$W/out.txt" || fail "no 'profiles written to' line"; }
within() { [ "$ELAPSED_MS" -lt "$1" ] || fail "took ${ELAPSED_MS} ms, limit $1 ms"; }

# A TCP server on 127.0.0.1 that accepts and never answers (a hung intake).
hung_intake() {
    python3 -c '
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 0)); s.listen(16)
print(s.getsockname()[1], flush=True)
conns = []
while True:
    c, _ = s.accept(); conns.append(c)
' >"$W/port.txt" &
    HUNG_PID=$!
    BG_PIDS="$BG_PIDS $HUNG_PID"
    for _ in $(seq 50); do [ -s "$W/port.txt" ] && break; sleep 0.1; done
    PORT=$(cat "$W/port.txt")
}

case "$CASE" in
cpu)
    # 500 Hz: enough samples for ±7 points even when other jobs leave this
    # process a fraction of a core (the weights do not depend on the rate).
    run 0 -agentpath:"$AGENT=$OPTS,cpu_interval_us=2000" -cp "$CLASSES" JvmTarget cpu 3
    said_where
    check share cpu-time JvmTarget.cpuHeavy JvmTarget.cpuLight 0.75 0.07 \
          min cpu-time JvmTarget.cpuHeavy 300000000 \
          label_min wall-time "thread name" sleeper 2000000000 \
          label_max cpu-time "thread name" sleeper 30000000 \
          min wall-time java.lang.Thread.sleep 2000000000
    ;;
alloc)
    run 0 -agentpath:"$AGENT=$OPTS" -cp "$CLASSES" JvmTarget alloc 3
    check share alloc-space JvmTarget.allocHeavy JvmTarget.allocLight 0.80 0.08 \
          class_of alloc-space JvmTarget.allocHeavy 'long[]' \
          class_of alloc-space JvmTarget.allocLight 'double[]' \
          min alloc-samples JvmTarget.allocLight 20 \
          last \
          class_of heap-space JvmTarget.retain 'int[]' \
          min heap-space JvmTarget.retain 40000000 \
          max heap-space JvmTarget.retain 100000000
    ;;
threads)
    run 0 -agentpath:"$AGENT=$OPTS" -cp "$CLASSES" JvmTarget threads 2
    check min cpu-time JvmTarget.shortWork 100000000 \
          label_min cpu-time "thread name" 'short-*' 100000000 \
          label_max cpu-time "thread name" 'contprof-*' 0
    ;;
unload)
    run 0 -agentpath:"$AGENT=$OPTS" -Xlog:class+unload=info:file="$W/unload.log" \
        -cp "$CLASSES" JvmTarget unload 3 "$PLUGIN"
    grep -q "UnloadWorker" "$W/unload.log" || fail "no class was unloaded"
    check min cpu-time UnloadWorker.work 100000000
    ;;
jfr)
    JFR_OPT="settings=profile,filename=$W/rec.jfr"
    [ "$VER" -ge 25 ] && JFR_OPT="$JFR_OPT,jdk.CPUTimeSample#enabled=true"
    run 0 -agentpath:"$AGENT=$OPTS,cpu_interval_us=2000" -XX:StartFlightRecording="$JFR_OPT" \
        -cp "$CLASSES" JvmTarget cpu 3
    check share cpu-time JvmTarget.cpuHeavy JvmTarget.cpuLight 0.75 0.07
    "$JDK/bin/jfr" summary "$W/rec.jfr" >"$W/jfr.txt" || fail "JFR recording unreadable"
    grep -E "jdk.ExecutionSample +[1-9]" "$W/jfr.txt" || fail "JFR took no execution samples"
    if [ "$VER" -ge 25 ]; then
        grep -E "jdk.CPUTimeSample +[1-9]" "$W/jfr.txt" || fail "JFR took no CPU-time samples"
        grep -q "Conflicting SIGPROF" "$W/out.txt" && fail "JFR found SIGPROF taken"
    fi
    ;;
exit)
    # upload_period=60: the only profile is the one flushed at exit.
    run 3 -agentpath:"$AGENT=output_dir=$W/prof,upload_period=60" -cp "$CLASSES" JvmTarget exit 1.5
    said_where
    within 6000
    # Four busy threads share what the machine gives: only presence counts.
    check min cpu-time JvmTarget.cpuHeavy 20000000 \
          label_min cpu-time "thread name" exiter 20000000
    ;;
exit_hung_intake)
    hung_intake
    run 3 -agentpath:"$AGENT=agent_url=http://127.0.0.1:$PORT,upload_period=60,flush_deadline_ms=1000" \
        -cp "$CLASSES" JvmTarget exit 1.5
    # 1.5 s of work + the 1 s flush deadline + JVM start-up; an unbounded
    # wait would take the 10 s upload timeout or longer.
    within 5000
    ;;
daemon)
    run 0 -agentpath:"$AGENT=output_dir=$W/prof,upload_period=60" -cp "$CLASSES" JvmTarget daemon 1.5
    check label_min cpu-time "thread name" 'daemon-*' 50000000 min cpu-time JvmTarget.cpuHeavy 50000000
    ;;
attach)
    # Late attach with jcmd: the daemon threads were running before the agent.
    "$JAVA" -cp "$CLASSES" JvmTarget daemon 10 >"$W/out.txt" 2>&1 &
    PID=$!
    BG_PIDS="$BG_PIDS $PID"
    sleep 1
    timeout 30 "$JDK/bin/jcmd" "$PID" JVMTI.agent_load "$AGENT" "\"$OPTS\"" || fail "jcmd attach failed"
    wait "$PID" || fail "target exited with $?"
    cat "$W/out.txt"
    check label_min cpu-time "thread name" 'daemon-*' 100000000
    ;;
deep)
    # 40 recursive frames, max_frames=16: the root end becomes one marker.
    # main may own a sample or two of its own (start-up before the
    # recursion, where the stack is shallow); inside the 1.5 s of deep
    # stacks it must never appear, so it stays far below deepLeaf.
    run 0 -agentpath:"$AGENT=$OPTS,max_frames=16" -cp "$CLASSES" JvmTarget deep 1.5
    check min cpu-time JvmTarget.deepLeaf 100000000 \
          min cpu-time '<frames omitted>' 100000000 \
          max cpu-time JvmTarget.main 50000000
    ;;
rename)
    run 0 -agentpath:"$AGENT=$OPTS" -cp "$CLASSES" JvmTarget rename 3
    check label_min cpu-time "thread name" before-rename 20000000 \
          label_min cpu-time "thread name" after-rename 100000000
    ;;
jit)
    # 1 kHz sampling over constant deoptimisation; AGCT failures are pseudo-frames.
    run 0 -agentpath:"$AGENT=$OPTS,cpu_interval_us=1000" -cp "$CLASSES" JvmTarget jit 2
    # Megamorphic calls sit in frameless dispatch code, which AGCT alone
    # cannot walk: the agent's retry from the caller must recover them.
    check min cpu-time JvmTarget.jitLoop 100000000 \
          share cpu-time JvmTarget.jitLoop '[unknown_Java]' 0.95 0.15
    ;;
takeover)
    # JDK 17 only: SIGPROF is the default there (on 25+ the agent avoids it).
    run 0 -agentpath:"$AGENT=$OPTS" -cp "$CLASSES" JvmTarget takeover 3
    if [ "$VER" -lt 25 ]; then
        grep -q "moved its CPU and wall sampling to signal" "$W/out.txt" || fail "no notice of the move"
    fi
    check min cpu-time JvmTarget.afterTakeover 30000000 \
          min wall-time JvmTarget.afterTakeover 700000000
    ;;
repeat)
    for i in 1 2 3 4 5; do
        rm -rf "$W/prof"
        run 0 -agentpath:"$AGENT=$OPTS" -cp "$CLASSES" JvmTarget cpu 0.4
        check profiles 1 min cpu-time JvmTarget.cpuHeavy 1
    done
    ;;
options)
    run 0 -agentpath:"$AGENT=help" -version
    grep -q "upload_period" "$W/out.txt" || fail "help lists no settings"
    printf 'service=from-file\nenv=from-file\n' >"$W/contprof.properties"
    printf 'version=from-file\n' >>"$W/contprof.properties"
    # file < environment < -D < -agentpath options
    CONTPROF_VERSION=from-env CONTPROF_ENV=from-env CONTPROF_SERVICE=from-env \
        run 0 -agentpath:"$AGENT=$OPTS,config=$W/contprof.properties,service=from-option" \
        -Dcontprof.env=from-sysprop -cp "$CLASSES" JvmTarget cpu 0.3
    grep -q '"tags_profiler":"[^"]*service:from-option,env:from-sysprop,version:from-env' "$W"/prof/*.json ||
        fail "settings precedence (option > -D > env > file) not applied"
    grep -q "language:jvm.*runtime_version:$VER" "$W"/prof/*.json || fail "missing runtime tags"
    grep -q '"input_arguments":\[' "$W"/prof/*.json || fail "no input arguments in runtime info"
    ;;
*)
    fail "unknown case"
    ;;
esac
echo "PASS($CASE, JDK $VER)"
