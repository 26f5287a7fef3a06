#!/usr/bin/env bash
# Installs what `npm run bench` drives: SIPp, sipsak, jq, sqlite3 and Debian's Kamailio with its
# SQLite module (the comparison anchor). Run as root or with sudo. Skips what is there.
set -euo pipefail
need=()
command -v sipp >/dev/null 2>&1 || need+=(sip-tester)
command -v sipsak >/dev/null 2>&1 || need+=(sipsak)
command -v jq >/dev/null 2>&1 || need+=(jq)
command -v sqlite3 >/dev/null 2>&1 || need+=(sqlite3)
command -v kamailio >/dev/null 2>&1 || need+=(kamailio)
[ -e /usr/lib/x86_64-linux-gnu/kamailio/modules/db_sqlite.so ] || ls /usr/lib/*/kamailio/modules/db_sqlite.so >/dev/null 2>&1 || need+=(kamailio-sqlite-modules)
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" = 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
# Receive buffers: our default maxbuffer (2 MiB) and Kamailio's (256 KiB) are capped by
# net.core.rmem_max, 208 KiB on stock Debian; 4 MiB lets both have what they ask for.
SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
if [ "$(cat /proc/sys/net/core/rmem_max 2>/dev/null || echo 0)" -lt 4194304 ]; then
  $SUDO sysctl -q -w net.core.rmem_max=4194304 || echo "install-bench-deps: could not raise net.core.rmem_max (the server's receive buffer stays at the kernel's cap)" >&2
fi
