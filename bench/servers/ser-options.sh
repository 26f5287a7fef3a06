#!/bin/bash
# Runs this project's server on bench/ser-options.cfg for ../shared/bench/run.sh:
#   run.sh -S options -s 'ts:options=/abs/path/bench/servers/ser-options.sh {PORT}'
# Stays in the foreground (exec), listening on udp:127.0.0.1:PORT.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd -P)
P=${1:?port}
RUN=/tmp/ser-bench-opt-$P; mkdir -p "$RUN"
{ printf 'fork=no\nlog_stderror=yes\nlisten=udp:127.0.0.1\nport=%s\n' "$P"; cat "$HERE/../ser-options.cfg"; } > "$RUN/ser.cfg"
exec node --max-semi-space-size=4 "$HERE/../../dist/src/cli/ser.js" -D -f "$RUN/ser.cfg"
