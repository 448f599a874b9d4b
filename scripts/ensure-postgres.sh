#!/usr/bin/env bash
# Make sure the PostgreSQL server the tests use is up: start the local cluster
# when it is not running, then wait for it. Fails loudly if it cannot.
set -euo pipefail
host=${PGHOST_TEST:-127.0.0.1}
port=${PGPORT_TEST:-5432}

ready() { pg_isready -q -h "$host" -p "$port" 2>/dev/null; }

if ready; then exit 0; fi
if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
  for version in $(ls /etc/postgresql); do
    echo "starting PostgreSQL $version cluster 'main'" >&2
    pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  done
elif command -v pg_ctl >/dev/null 2>&1 && [ -n "${PGDATA:-}" ]; then
  pg_ctl -D "$PGDATA" -w start
fi
for _ in $(seq 1 60); do
  if ready; then exit 0; fi
  sleep 0.5
done
echo "error: PostgreSQL is not reachable on $host:$port; the PostgreSQL half of the tests cannot run" >&2
exit 1
