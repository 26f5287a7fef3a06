#!/usr/bin/env bash
# Is SIPp the limit? The OPTIONS scenario against one server at a total RATE split over N SIPp
# UACs (each on its own port and process), for SECONDS; prints one JSON line: calls sent, the
# failures, the achieved rate and the server's CPU-s per 1,000. Run it with N=1 and N=2 at a
# rate where one SIPp stops keeping up: when two reach the rate and one does not, the
# generator was the limit, not the server.
#   bench/multi-uac.sh SERVER N RATE [SECONDS]     SERVER: ours | kamailio
# Needs the bench tools (scripts/install-bench-deps.sh) and a build (npm run build).
# Every SIPp run is bounded by -m (its share of RATE x SECONDS) and a timeout.
set -euo pipefail
SERVER=${1:?ours or kamailio}; N=${2:?number of UACs}; RATE=${3:?total rate}; DUR=${4:-10}
ROOT=$(cd "$(dirname "$0")/.." && pwd -P)
SHARED=${BENCH_SHARED:-$ROOT/../shared/bench}
PORT=${PORT:-5470}
OUT=$(mktemp -d /tmp/multi-uac.XXXXXX)
case "$SERVER" in
  ours) export SER_BIN="node --max-semi-space-size=4 $ROOT/dist/src/cli/ser.js -D"
        CMD=("$SHARED/servers/ser-cfg.sh" noauth "${CHILDREN:-1}" "$PORT") ;;
  kamailio) CMD=("$SHARED/servers/kamailio.sh" noauth "${CHILDREN:-2}" "$PORT") ;;
  *) echo "unknown server $SERVER" >&2; exit 2 ;;
esac
(cd "$SHARED" && exec "${CMD[@]}") > "$OUT/server.log" 2>&1 &
SPID=$!
trap 'kill $SPID 2>/dev/null || true; pkill -P $SPID 2>/dev/null || true' EXIT
for _ in $(seq 1 60); do sipsak -s "sip:ping@127.0.0.1:$PORT" -v >/dev/null 2>&1 && break; sleep 0.25; done
# the server's processes (Kamailio forks children): their CPU ticks summed
cpu() { local t=0 p; for p in $(pgrep -P $SPID) $SPID; do t=$((t + $(awk '{print $14+$15}' /proc/$p/stat 2>/dev/null || echo 0))); done; echo $t; }
uac() { # port rate count
  timeout -k 3 $((DUR + 30)) sipp "127.0.0.1:$PORT" -i 127.0.0.1 -bind_local -p "$1" -sf "$SHARED/scenarios/options.xml" \
    -r "$2" -m "$3" -nostdin -timeout $((DUR + 20))s -timeout_error -recv_timeout 5000 > "$OUT/sipp-$1.out" 2>&1 || true
}
# a short warm-up at a tenth of the rate (the JIT of ours)
uac $((PORT + 10)) $((RATE / 10)) $((RATE / 10 * 3))
c0=$(cpu); t0=$(date +%s.%N)
per=$((RATE / N)); count=$((per * DUR))
PIDS=()
for i in $(seq 1 "$N"); do uac $((PORT + 10 + i)) "$per" "$count" & PIDS+=($!); done
wait "${PIDS[@]}"
c1=$(cpu); t1=$(date +%s.%N)
ok=0; failed=0
for i in $(seq 1 "$N"); do
  f="$OUT/sipp-$((PORT + 10 + i)).out"
  ok=$((ok + $(awk -F'|' '/Successful call/ {gsub(/ /, "", $3); print $3; exit}' "$f" || echo 0)))
  failed=$((failed + $(awk -F'|' '/Failed call/ {gsub(/ /, "", $3); print $3; exit}' "$f" || echo 0)))
done
HZ=$(getconf CLK_TCK)
awk -v s="$SERVER" -v n="$N" -v r="$RATE" -v ok="$ok" -v f="$failed" -v c=$((c1 - c0)) -v hz="$HZ" -v t0="$t0" -v t1="$t1" \
  'BEGIN { printf "{\"server\":\"%s\",\"uacs\":%d,\"rate\":%d,\"ok\":%d,\"failed\":%d,\"achieved\":%.0f,\"cpu_s_per_1000\":%.4f}\n",
           s, n, r, ok, f, ok / (t1 - t0), c / hz / (ok > 0 ? ok : 1) * 1000 }'
rm -rf "$OUT"
