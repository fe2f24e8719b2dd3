#!/usr/bin/env bash
# Installs and starts everything the test suite needs on a fresh Debian machine, and does
# nothing that is already done: Debian packages (chromium, coturn, PostgreSQL, Redis, nginx, Node),
# the Python venv with the test extras, and the npm packages of tests/node.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}

need_apt=()
command -v chromium   >/dev/null || need_apt+=(chromium)
command -v turnserver >/dev/null || need_apt+=(coturn)
command -v node       >/dev/null || need_apt+=(nodejs)
command -v npm        >/dev/null || need_apt+=(npm)
command -v unshare    >/dev/null || need_apt+=(util-linux)
command -v ip         >/dev/null || need_apt+=(iproute2)
command -v redis-server >/dev/null || need_apt+=(redis-server)
command -v pg_ctlcluster >/dev/null || need_apt+=(postgresql)
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need_apt+=(nginx)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "test-deps: installing Debian packages: ${need_apt[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

# PostgreSQL and Redis for the cluster backends (started only if not already answering).
if ! (echo > /dev/tcp/127.0.0.1/5432) 2>/dev/null; then
  echo "test-deps: starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -n1)" main start || true
fi
if ! (echo > /dev/tcp/127.0.0.1/6379) 2>/dev/null; then
  echo "test-deps: starting Redis"
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
fi

# A database and login of our own for the PostgreSQL tests: a fresh Debian cluster has no `test`
# database and asks TCP logins for a password, so the tests would otherwise skip.
PGURL=${SIGNALITE_TEST_POSTGRES_URL:-postgresql://signalite_test:signalite_test@127.0.0.1:5432/signalite_test}
# (CREATEROLE: one test proves a role without the right to create the schema gets a clear error.)
if command -v psql >/dev/null && [ "$(psql "$PGURL" -qtAc 'select rolcreaterole from pg_roles where rolname = current_user' 2>/dev/null)" != t ]; then
  echo "test-deps: creating the signalite_test PostgreSQL role and database"
  as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else sudo -u postgres "$@"; fi; }
  as_pg psql -qc "DO \$\$BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'signalite_test') THEN
                  CREATE ROLE signalite_test LOGIN PASSWORD 'signalite_test'; END IF; END\$\$;
                  ALTER ROLE signalite_test CREATEROLE;"
  as_pg psql -qtAc "SELECT 1 FROM pg_database WHERE datname = 'signalite_test'" | grep -q 1 \
    || as_pg createdb -O signalite_test signalite_test
fi
# What the test run needs to know; `make test` loads it. The cluster backends must not skip.
cat > .test-env <<ENV
SIGNALITE_TEST_POSTGRES_URL=$PGURL
SIGNALITE_TEST_REDIS_URL=${SIGNALITE_TEST_REDIS_URL:-redis://127.0.0.1:6379/0}
SIGNALITE_REQUIRE_POSTGRES=1
SIGNALITE_REQUIRE_REDIS=1
ENV

# Python: the package with its test extras.
if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
if [ ! -f "$VENV/.test-installed" ] || [ pyproject.toml -nt "$VENV/.test-installed" ]; then
  "$VENV/bin/python" -m pip install -q --upgrade pip
  "$VENV/bin/python" -m pip install -q -e '.[test]'
  touch "$VENV/.test-installed"
fi

# Node: the real JS clients (AWS SDK v3, the KVS WebRTC SDK, ws).
if [ -f tests/node/package.json ]; then
  if [ ! -d tests/node/node_modules ] || [ tests/node/package-lock.json -nt tests/node/node_modules ]; then
    (cd tests/node && npm ci --no-audit --no-fund --loglevel=error)
  fi
fi
echo "test-deps: ready"
