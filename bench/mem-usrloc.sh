#!/usr/bin/env bash
# RSS of this server with N registered users, as ../shared/bench/mem-usrloc.sh measures it
# (N distinct users REGISTER once at RATE/s, Expires 3600), sampled 2 s after the storm (the
# shared script's moment) and again after SETTLE s, when the young generation that the storm
# grew has been released (release_idle_memory waits 5 s of quiet; docs/performance.md).
#   bench/mem-usrloc.sh [N=100000] [RATE=5000] [SETTLE=8]     prints one JSON line
# RELEASE=1 adds release_idle_memory=yes to the bench script (../shared/bench/ser-cfg/ser-default.cfg).
# Needs the bench tools (scripts/install-bench-deps.sh) and a build. Bounded: -m N and timeouts.
set -euo pipefail
N=${1:-100000}; RATE=${2:-5000}; SETTLE=${3:-8}
ROOT=$(cd "$(dirname "$0")/.." && pwd -P)
SHARED=${BENCH_SHARED:-$ROOT/../shared/bench}
PORT=${PORT:-5470}
W=$(mktemp -d /tmp/ser-mem.XXXXXX)
{ echo SEQUENTIAL; for ((i = 0; i < N; i++)); do printf 'm%07d\n' "$i"; done; } > "$W/users.csv"
# the shared script with our listen options first, as servers/ser-cfg.sh writes it
{ printf 'fork=no\nlog_stderror=yes\nlisten=127.0.0.1\nport=%s\nchildren=1\n' "$PORT"
  [ "${RELEASE:-0}" = 1 ] && printf 'release_idle_memory=yes\n'
  grep -vE '^[[:space:]]*(listen|port|fork|log_stderror|children)[[:space:]]*=' "$SHARED/ser-cfg/ser-default.cfg"; } > "$W/ser.cfg"
node --max-semi-space-size=4 ${NODE_EXTRA:-} "$ROOT/dist/src/cli/ser.js" -D -f "$W/ser.cfg" > "$W/server.log" 2>&1 &
SPID=$!
trap 'kill $SPID 2>/dev/null || true; rm -rf "$W"' EXIT
for _ in $(seq 1 60); do sipsak -s "sip:ping@127.0.0.1:$PORT" -v >/dev/null 2>&1 && break; sleep 0.25; done
sleep 1
rss() { awk '/^VmRSS/ {print $2}' "/proc/$SPID/status"; }
before=$(rss)
(cd "$W" && timeout -k 5 $((N / RATE + 60)) sipp "127.0.0.1:$PORT" -sf "$SHARED/scenarios/register-noauth.xml" -inf "$W/users.csv" \
  -key contact_host 127.0.0.1 -key contact_port $((PORT + 10)) -i 127.0.0.1 -bind_local -p $((PORT + 10)) \
  -r "$RATE" -m "$N" -l 20000 -nostdin -timeout $((N / RATE + 50))s -timeout_error -recv_timeout 5000 \
  -buff_size 4194304 -trace_stat -fd 1 -stf stat.csv > sipp.out 2>&1) || true
sleep 2
at2=$(rss)
sleep $((SETTLE - 2))
settled=$(rss)
ok=$(awk -F';' 'NR==1{for(i=1;i<=NF;i++) if($i=="SuccessfulCall(C)") c=i} END{print $c}' "$W/stat.csv")
printf '{"release_idle_memory":%s,"users":%s,"registered":%s,"rss_kb_idle":%s,"rss_kb_2s":%s,"rss_kb_%ss":%s}\n' "${RELEASE:-0}" "$N" "${ok:-0}" "$before" "$at2" "$SETTLE" "$settled"
