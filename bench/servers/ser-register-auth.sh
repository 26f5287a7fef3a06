#!/bin/bash
# Runs this project's server on bench/ser-register-auth.cfg for ../shared/bench/run.sh:
#   run.sh -S regauth -s 'ts:regauth=/abs/path/bench/servers/ser-register-auth.sh {PORT}'
# The subscriber DB is ../shared/bench's (BENCH_DB, default /tmp/sip-bench-subscriber.db),
# made with its kamailio/mkdb.sh when missing. Stays in the foreground (exec).
set -eu
HERE=$(cd "$(dirname "$0")" && pwd -P)
P=${1:?port}
DB=${BENCH_DB:-/tmp/sip-bench-subscriber.db}
MKDB=$HERE/../../../shared/bench/kamailio/mkdb.sh
[ -s "$DB" ] || "$MKDB" "$DB" >/dev/null
RUN=/tmp/ser-bench-regauth-$P; mkdir -p "$RUN"
{ printf 'fork=no\nlog_stderror=yes\nlisten=udp:127.0.0.1\nport=%s\n' "$P"
  sed "s|@DBURL@|sqlite://$DB|" "$HERE/../ser-register-auth.cfg"; } > "$RUN/ser.cfg"
exec node --max-semi-space-size=4 "$HERE/../../dist/src/cli/ser.js" -D -f "$RUN/ser.cfg"
