#!/usr/bin/env bash
# What `npm start` and `npm test` need on this machine; quick when it is already done.
#   1. node_modules (npm ci when missing or out of date)
#   2. local PostgreSQL, Redis and MariaDB started when they are installed but not running (default URLs only)
#   3. the temporal CLI: on PATH, in .tools/bin, or built there with go install
#   4. the TypeScript build, the workflow bundle a worker loads at start, and the outbox page
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf 'setup: %s\n' "$*" >&2; }

if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  say "installing dependencies (npm ci)"
  npm ci --no-audit --no-fund
fi

if [ -z "${OUTBOX_DATABASE_URL:-}${TARGET_DATABASE_URL:-}" ] && command -v pg_isready >/dev/null; then
  if ! pg_isready -h 127.0.0.1 -p 5432 -q; then
    if command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ]; then
      say "starting PostgreSQL"
      pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n 1)" main start
      for _ in $(seq 1 30); do pg_isready -h 127.0.0.1 -p 5432 -q && break; sleep 1; done
    else
      say "PostgreSQL is not answering on 127.0.0.1:5432 and cannot be started from here"; exit 1
    fi
  fi
fi

if [ -z "${REDIS_URL:-}" ] && command -v redis-cli >/dev/null; then
  if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
    if command -v redis-server >/dev/null; then
      say "starting Redis"
      mkdir -p /tmp/outbox-sync-redis
      redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
        --dir /tmp/outbox-sync-redis --logfile /tmp/outbox-sync-redis/redis.log
      for _ in $(seq 1 30); do redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && break; sleep 0.5; done
    else
      say "Redis is not answering on 127.0.0.1:6379 and redis-server is not installed"; exit 1
    fi
  fi
fi

# MariaDB holds the tests' user tables on the second engine (TEST_MYSQL_URL names another server).
if [ -z "${TEST_MYSQL_URL:-}" ] && command -v mariadb-admin >/dev/null; then
  if ! mariadb-admin -h 127.0.0.1 -P 3306 -u root ping >/dev/null 2>&1; then
    if [ -x /usr/sbin/mariadbd ]; then
      say "starting MariaDB"
      start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
      for _ in $(seq 1 60); do mariadb-admin -h 127.0.0.1 -P 3306 -u root ping >/dev/null 2>&1 && break; sleep 0.5; done
    else
      say "MariaDB is not answering on 127.0.0.1:3306 and mariadbd is not installed"; exit 1
    fi
  fi
fi

if [ -z "${TEMPORAL_CLI:-}" ] && ! command -v temporal >/dev/null && [ ! -x .tools/bin/temporal ]; then
  if command -v go >/dev/null; then
    say "building the temporal CLI v1.5.1 into .tools/bin (a few minutes, once)"
    GOBIN="$PWD/.tools/bin" go install github.com/temporalio/cli/cmd/temporal@v1.5.1
  else
    say "the temporal CLI is missing and Go is not installed to build it."
    say "Install Go, or put temporal on PATH, or run: GOBIN=\$PWD/.tools/bin go install github.com/temporalio/cli/cmd/temporal@v1.5.1"
    exit 1
  fi
fi

npx tsc -p tsconfig.json
node dist/worker/bundle.js
# The outbox page's front end, served from dist/ui/web by `outbox-sync ui`.
npx vite build --config servers/ui/web/vite.config.mts --logLevel warn
