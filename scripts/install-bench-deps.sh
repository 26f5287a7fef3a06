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
