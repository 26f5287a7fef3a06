#!/bin/sh
# Builds native/ser_udp.node (see udp.c) with the C compiler against the running Node's
# headers. The addon is optional: when it cannot be built (no compiler, no headers, not
# Linux), this says so and exits 0, and the server uses node:dgram for UDP.
cd "$(dirname "$0")" || exit 0
OUT=ser_udp.node
[ "$(uname -s)" = Linux ] || { echo "native UDP: not Linux, skipped (node:dgram is used)"; exit 0; }
INC=""
for d in "${npm_config_nodedir:-}/include/node" "$(dirname "$(dirname "$(node -p process.execPath)")")/include/node" /usr/include/node /usr/local/include/node; do
  if [ -f "$d/node_api.h" ] && [ -f "$d/uv.h" ]; then INC=$d; break; fi
done
[ -n "$INC" ] || { echo "native UDP: Node's headers (node_api.h, uv.h) not found, skipped (node:dgram is used)"; exit 0; }
CC=${CC:-cc}
if $CC -O2 -Wall -Wextra -Wno-unused-parameter -fPIC -shared -I"$INC" -o "$OUT.tmp" udp.c 2> build.log; then
  mv "$OUT.tmp" "$OUT"; rm -f build.log
else
  rm -f "$OUT.tmp"; echo "native UDP: compile failed (native/build.log), skipped (node:dgram is used)"
fi
exit 0
