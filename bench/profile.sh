#!/usr/bin/env bash
# Profile our server (node --cpu-prof) under one of the shared bench scenarios at a fixed rate,
# then print where its time went (bench/cpuprofile-top.ts).
#   bench/profile.sh SCENARIO RATE [SECONDS]     SCENARIO: options | register | regauth | call
# PERF=1: on-CPU samples with Linux perf instead (node --perf-basic-prof names the JS frames;
# kernel time shows too). --cpu-prof samples wall time, so a send that wakes SIPp and gets the
# server preempted looks expensive there; perf counts only time on a CPU.
# PERF_ARGS: more perf record options, e.g. "-g" for call chains (perf report -i OUT/perf.data -G).
# Needs the bench tools (scripts/install-bench-deps.sh) and a build (npm run build).
# Every SIPp run is bounded by -m (RATE x SECONDS) and a timeout.
set -euo pipefail
SCEN=${1:?scenario}; RATE=${2:?rate}; DUR=${3:-10}
ROOT=$(cd "$(dirname "$0")/.." && pwd -P)
SHARED=${BENCH_SHARED:-$ROOT/../shared/bench}
SC=$SHARED/scenarios
PORT=${PORT:-5370}; UAC=$((PORT + 10)); SETUP=$((PORT + 11)); UASP=$((PORT + 20))
OUT=${OUT:-$ROOT/bench/results/profile-$SCEN-$RATE}
rm -rf "$OUT"; mkdir -p "$OUT"
VARIANT=noauth; [ "$SCEN" = regauth ] && VARIANT=auth
# NOPROF=1: no profiler, only the CPU figure (to compare runtime flags in NODE_EXTRA)
if [ "${PERF:-0}" = 1 ]; then PROF="--perf-basic-prof"; elif [ "${NOPROF:-0}" = 1 ]; then PROF=""; else PROF="--cpu-prof --cpu-prof-dir=$OUT"; fi
# --max-semi-space-size=4: as the `ser` command starts (src/cli/ser.ts); NODE_EXTRA comes later and wins
export SER_BIN="node --max-semi-space-size=4 $PROF ${NODE_EXTRA:-} $ROOT/dist/src/cli/ser.js -D"
"$SHARED/servers/ser-cfg.sh" "$VARIANT" "${CHILDREN:-1}" "$PORT" > "$OUT/server.log" 2>&1 &
SPID=$!
trap 'kill $SPID 2>/dev/null || true' EXIT
for _ in $(seq 1 60); do sipsak -s "sip:ping@127.0.0.1:$PORT" -v >/dev/null 2>&1 && break; sleep 0.25; done
sipp_run() { # rate count port extra...
  local r=$1 n=$2 p=$3; shift 3
  (cd "$OUT" && timeout -k 3 $((n / r + 40)) sipp "127.0.0.1:$PORT" -i 127.0.0.1 -bind_local -p "$p" -r "$r" -m "$n" \
    -nostdin -timeout $((n / r + 30))s -timeout_error -recv_timeout 5000 "$@" > "sipp-$p.out" 2>&1)
}
case "$SCEN" in
  options)  ARGS=(-sf "$SC/options.xml") ;;
  register) ARGS=(-sf "$SC/register-noauth.xml" -inf "$SC/users-noauth.csv" -key contact_host 127.0.0.1 -key contact_port "$UAC") ;;
  regauth)  ARGS=(-sf "$SC/register-auth.xml" -inf "$SC/users-auth.csv") ;;
  call)     sipp_run 500 1000 "$SETUP" -sf "$SC/register-noauth.xml" -inf "$SC/callees.csv" \
              -key contact_host 127.0.0.1 -key contact_port "$UASP"
            ARGS=(-sf "$SC/call-uac.xml" -inf "$SC/callees.csv" -d 0 -pause_msg_ign) ;;
  *) echo "unknown scenario $SCEN" >&2; exit 2 ;;
esac
N=$((RATE * DUR))
if [ "$SCEN" = call ]; then
  (cd "$OUT" && timeout -k 3 $((DUR + 60)) sipp -sf "$SC/call-uas.xml" -i 127.0.0.1 -bind_local -p "$UASP" \
    -m $((N + RATE * ${WARMUP:-10})) -nostdin -timeout $((DUR + 50))s > uas.out 2>&1) &
  UAS=$!
fi
sipp_run "$RATE" $((RATE * ${WARMUP:-10})) "$UAC" "${ARGS[@]}"   # warm-up (JIT), WARMUP seconds
c0=$(awk '{print $14+$15}' /proc/$SPID/stat)
# CPU ticks per thread (main thread, V8's GC/compiler helpers, libuv's pool): where the figure goes
threads() {
  for t in /proc/$SPID/task/*; do
    n=$(tr ' ' _ < "$t/comm"); [ "${t##*/}" = "$SPID" ] && n="main($n)"
    printf '%s %s %s\n' "${t##*/}" "$n" "$(awk '{print $14+$15}' "$t/stat")"
  done
}
threads > "$OUT/threads0"
if [ "${PERF:-0}" = 1 ]; then
  perf record -q -e cpu-clock -F 4000 ${PERF_ARGS:-} -p "$SPID" -o "$OUT/perf.data" -- sleep $((DUR > 2 ? DUR - 1 : 1)) 2>/dev/null &
  PERFP=$!
fi
sipp_run "$RATE" "$N" "$UAC" "${ARGS[@]}" || echo "sipp reported failures (see $OUT)"
c1=$(awk '{print $14+$15}' /proc/$SPID/stat)
threads > "$OUT/threads1"
[ -n "${PERFP:-}" ] && wait "$PERFP" || true
[ -n "${UAS:-}" ] && wait "$UAS" || true
kill -TERM $SPID; wait $SPID || true
trap - EXIT
HZ=$(getconf CLK_TCK)
echo "server CPU over the measured $N: $(awk -v d=$((c1 - c0)) -v hz="$HZ" -v n="$N" 'BEGIN{printf "%.4f s per 1,000", d / hz / n * 1000}')"
if [ "${NOPROF:-0}" = 1 ]; then
  :
elif [ "${PERF:-0}" = 1 ]; then
  perf report -i "$OUT/perf.data" --no-children --sort dso --stdio 2>/dev/null | grep -v '^#' | grep -v '^$' | head -6
  perf report -i "$OUT/perf.data" --no-children --sort sym --stdio 2>/dev/null | grep -v '^#' | grep -v '^$' |
    sed 's|file://[^ ]*/dist/||' | head -"${TOP:-35}"
else
  node "$ROOT/dist/bench/cpuprofile-top.js" "$(ls -t "$OUT"/*.cpuprofile | head -1)" "${TOP:-35}"
fi
echo "by thread (ticks of 1/$HZ s; helper threads summed by name):"
awk 'NR==FNR { a[$1]=$3; next } { d[$2] += $3 - a[$1] } END { for (k in d) printf "  %-18s %d\n", k, d[k] }' \
  "$OUT/threads0" "$OUT/threads1" | sort -k2 -nr
