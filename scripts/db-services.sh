#!/usr/bin/env bash
# Installs and starts the database servers the db tests use, when they are not
# running: MariaDB on 127.0.0.1:3306 (user root@127.0.0.1 without password,
# database `test`) and PostgreSQL on 127.0.0.1:5432 (superuser role `root`, database
# `test`, trust authentication for 127.0.0.1). For test/CI machines only: it opens
# password-less local access. Idempotent; run as root (Debian/Ubuntu, no systemd needed).
set -euo pipefail

if [ "$(id -u)" != 0 ]; then
  echo "db-services.sh: run as root (sudo $0)" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive

need=()
[ -x /usr/sbin/mariadbd ] || need+=(mariadb-server mariadb-client)
command -v pg_ctlcluster >/dev/null 2>&1 && ls /etc/postgresql/*/main >/dev/null 2>&1 || need+=(postgresql postgresql-client)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

wait_for() { # <what> <command…>: retry for up to 30 s
  local what=$1
  shift
  for _ in $(seq 1 60); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.5
  done
  echo "db-services.sh: $what did not come up" >&2
  return 1
}

# ---- MariaDB ----
if ! mariadb-admin --protocol=socket -uroot ping >/dev/null 2>&1; then
  if [ ! -d /var/lib/mysql/mysql ]; then
    mariadb-install-db --user=mysql --datadir=/var/lib/mysql >/dev/null
  fi
  mkdir -p /run/mysqld
  chown mysql:mysql /run/mysqld
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd -- --user=mysql
  wait_for "MariaDB" mariadb-admin --protocol=socket -uroot ping
fi
mariadb --protocol=socket -uroot <<'SQL'
CREATE USER IF NOT EXISTS 'root'@'127.0.0.1' IDENTIFIED BY '';
GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;
CREATE DATABASE IF NOT EXISTS test;
FLUSH PRIVILEGES;
SQL
wait_for "MariaDB on 127.0.0.1:3306" mariadb -h127.0.0.1 -P3306 -uroot -e 'SELECT 1' test

# ---- PostgreSQL ----
ver=$(ls /etc/postgresql | sort -V | tail -1)
hba=/etc/postgresql/$ver/main/pg_hba.conf
if ! grep -q '^host all all 127.0.0.1/32 trust' "$hba"; then
  # first matching line wins: put the trust rule on top
  sed -i '1i host all all 127.0.0.1/32 trust' "$hba"
  reload=1
fi
if ! pg_ctlcluster --skip-systemctl-redirect "$ver" main status >/dev/null 2>&1; then
  pg_ctlcluster --skip-systemctl-redirect "$ver" main start
elif [ "${reload:-0}" = 1 ]; then
  pg_ctlcluster --skip-systemctl-redirect "$ver" main reload
fi
wait_for "PostgreSQL" su postgres -c "psql -qAt -c 'SELECT 1'"
su postgres -c "psql -qAt -c \"SELECT 1 FROM pg_roles WHERE rolname = 'root'\"" | grep -q 1 ||
  su postgres -c "psql -q -c 'CREATE ROLE root SUPERUSER LOGIN'"
su postgres -c "psql -qAt -c \"SELECT 1 FROM pg_database WHERE datname = 'test'\"" | grep -q 1 ||
  su postgres -c "psql -q -c 'CREATE DATABASE test OWNER root'"
wait_for "PostgreSQL on 127.0.0.1:5432" psql -h 127.0.0.1 -p 5432 -U root -d test -qAt -c 'SELECT 1'

echo "db-services.sh: MariaDB and PostgreSQL are up"
