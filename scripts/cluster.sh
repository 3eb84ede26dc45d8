#!/usr/bin/env bash
# The production Temporal server (v1.29.1) run locally as four processes: frontend, history, matching
# and worker, with persistence and visibility in the local PostgreSQL and mutual TLS on the frontend.
# Everything it makes lives under .tools/ (binaries in .tools/bin, the rest in .tools/cluster).
#
#   scripts/cluster.sh build                 temporal-server and temporal-sql-tool into .tools/bin (once)
#   scripts/cluster.sh setup                 databases and schemas, CA and certificates, server config, env file
#   scripts/cluster.sh start [--service S]   all services (or S alone) in the background, waits until they answer
#   scripts/cluster.sh stop [S]              stops all services, or S
#   scripts/cluster.sh restart [S]           stop then start, all services or S
#   scripts/cluster.sh kill S                SIGKILLs S, as a crash would (start --service S brings it back)
#   scripts/cluster.sh status                what runs (exit 0 when all four run and the frontend answers)
#   scripts/cluster.sh namespace             creates the namespace over mTLS when it is missing
#   scripts/cluster.sh up                    build, setup, start and namespace in one go
#
# A client sources .tools/cluster/env (TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_TLS_*; the same
# variables serve the temporal CLI). Ports: frontend gRPC 7333 (HTTP 7343), history 7334, matching 7335,
# worker 7339 (configured, but the worker service serves no gRPC); membership 6333/6334/6335/6339;
# Prometheus metrics 9333/9334/9335/9339. The dev server's 7233 and 8233 are left alone.
#
# Settings (environment):
#   OUTBOX_SYNC_CLUSTER_DB              persistence database      (outbox_sync_temporal)
#   OUTBOX_SYNC_CLUSTER_VISIBILITY_DB   visibility database       (outbox_sync_temporal_visibility)
#   OUTBOX_SYNC_CLUSTER_PG_HOST / _PG_PORT / _PG_USER / _PG_PASSWORD   (127.0.0.1 / 5432 / root / empty)
#   OUTBOX_SYNC_CLUSTER_NAMESPACE       namespace `namespace` creates and the env file names (default)
#   OUTBOX_SYNC_CLUSTER_RETENTION       its retention             (24h)
#   TEMPORAL_CLI                        the temporal CLI          (temporal on PATH, or .tools/bin/temporal)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
export PATH="/usr/local/go/bin:$PATH"

VERSION=v1.29.1
BIN="$ROOT/.tools/bin"
DIR="$ROOT/.tools/cluster"
CERTS="$DIR/certs"
LOGS="$DIR/logs"
PIDS="$DIR/pids"
ENV_NAME=cluster                       # the server reads $DIR/config/$ENV_NAME.yaml
CONFIG="$DIR/config/$ENV_NAME.yaml"
DYNAMIC_CONFIG="$DIR/config/dynamicconfig.yaml"
ENV_FILE="$DIR/env"

DB="${OUTBOX_SYNC_CLUSTER_DB:-outbox_sync_temporal}"
VISIBILITY_DB="${OUTBOX_SYNC_CLUSTER_VISIBILITY_DB:-outbox_sync_temporal_visibility}"
PG_HOST="${OUTBOX_SYNC_CLUSTER_PG_HOST:-127.0.0.1}"
PG_PORT="${OUTBOX_SYNC_CLUSTER_PG_PORT:-5432}"
PG_USER="${OUTBOX_SYNC_CLUSTER_PG_USER:-root}"
PG_PASSWORD="${OUTBOX_SYNC_CLUSTER_PG_PASSWORD:-}"
NAMESPACE="${OUTBOX_SYNC_CLUSTER_NAMESPACE:-default}"
RETENTION="${OUTBOX_SYNC_CLUSTER_RETENTION:-24h}"

SERVICES=(frontend history matching worker)
declare -A GRPC_PORT=([frontend]=7333 [history]=7334 [matching]=7335 [worker]=7339)
declare -A MEMBERSHIP_PORT=([frontend]=6333 [history]=6334 [matching]=6335 [worker]=6339)
declare -A METRICS_PORT=([frontend]=9333 [history]=9334 [matching]=9335 [worker]=9339)
FRONTEND_HTTP_PORT=7343
# The port that shows a service is up: its gRPC port, or for the worker (which serves none) its membership port.
declare -A READY_PORT=([frontend]=7333 [history]=7334 [matching]=7335 [worker]=6339)
ADDRESS="127.0.0.1:${GRPC_PORT[frontend]}"
SERVER_NAME=localhost                  # in the frontend certificate, beside IP 127.0.0.1

say() { printf 'cluster: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

usage() {
  sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//' >&2
  exit 2
}

is_service() {
  local s
  for s in "${SERVICES[@]}"; do [ "$s" = "$1" ] && return 0; done
  return 1
}

# --- build -------------------------------------------------------------------------------------------

cmd_build() {
  command -v go >/dev/null || die "Go is not installed (looked on PATH and in /usr/local/go/bin)"
  mkdir -p "$BIN"
  if [ ! -x "$BIN/temporal-server" ]; then
    say "building temporal-server $VERSION into .tools/bin (a few minutes, once)"
    GOBIN="$BIN" CGO_ENABLED=0 go install -tags disable_grpc_modules "go.temporal.io/server/cmd/server@$VERSION"
    mv -f "$BIN/server" "$BIN/temporal-server"
  fi
  if [ ! -x "$BIN/temporal-sql-tool" ]; then
    say "building temporal-sql-tool $VERSION into .tools/bin"
    GOBIN="$BIN" CGO_ENABLED=0 go install -tags disable_grpc_modules "go.temporal.io/server/cmd/tools/sql@$VERSION"
    mv -f "$BIN/sql" "$BIN/temporal-sql-tool"
  fi
  say "built: $("$BIN/temporal-server" --version)"
}

need_binaries() {
  [ -x "$BIN/temporal-server" ] && [ -x "$BIN/temporal-sql-tool" ] || die "temporal-server is not built: run scripts/cluster.sh build"
}

# --- setup -------------------------------------------------------------------------------------------

psql_admin() {
  PGPASSWORD="$PG_PASSWORD" psql -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -d postgres -v ON_ERROR_STOP=1 -qtA "$@"
}

sql_tool() {
  local db="$1"; shift
  "$BIN/temporal-sql-tool" --plugin postgres12 --ep "$PG_HOST" -p "$PG_PORT" -u "$PG_USER" --pw "$PG_PASSWORD" --db "$db" "$@"
}

# The versioned schema files, from the module source `build` fetched into the Go module cache. When the
# cache has been cleaned, the copy embedded in temporal-sql-tool (--schema-name) serves instead.
schema_args() {
  local dir
  dir="$( (go env GOMODCACHE) 2>/dev/null || true)/go.temporal.io/server@$VERSION/schema/postgresql/v12/$1/versioned"
  if [ -d "$dir" ]; then
    printf '%s\n' --schema-dir "$dir"
  else
    printf '%s\n' --schema-name "postgresql/v12/$1"
  fi
}

setup_database() {
  local db="$1" schema="$2" args
  [[ "$db" =~ ^[A-Za-z_][A-Za-z0-9_]{0,62}$ ]] || die "database name '$db': letters, digits and _ only"
  mapfile -t args < <(schema_args "$schema")
  if [ "$(psql_admin -c "SELECT 1 FROM pg_database WHERE datname = '$db'")" != 1 ]; then
    say "creating database $db"
    psql_admin -c "CREATE DATABASE \"$db\""
  fi
  say "schema of $db: setup-schema -v 0.0, update-schema ${args[*]}"
  sql_tool "$db" setup-schema -v 0.0 >>"$LOGS/setup.log" 2>&1 || { tail -n 20 "$LOGS/setup.log" >&2; die "setup-schema failed on $db"; }
  sql_tool "$db" update-schema "${args[@]}" >>"$LOGS/setup.log" 2>&1 || { tail -n 20 "$LOGS/setup.log" >&2; die "update-schema failed on $db"; }
}

# A key and a certificate signed by the CA, made once. $1 name, $2 subject CN, $3 extensions.
make_cert() {
  local name="$1" cn="$2" ext="$3"
  [ -s "$CERTS/$name.pem" ] && [ -s "$CERTS/$name-key.pem" ] && return 0
  say "making certificate $name ($cn)"
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$CERTS/$name-key.pem" 2>/dev/null
  openssl req -new -key "$CERTS/$name-key.pem" -subj "/O=outbox-sync local cluster/CN=$cn" -out "$CERTS/$name.csr"
  printf '%s\n' "$ext" >"$CERTS/$name.ext"
  openssl x509 -req -in "$CERTS/$name.csr" -CA "$CERTS/ca.pem" -CAkey "$CERTS/ca-key.pem" -CAcreateserial \
    -days 825 -sha256 -extfile "$CERTS/$name.ext" -out "$CERTS/$name.pem" 2>/dev/null
  rm -f "$CERTS/$name.csr" "$CERTS/$name.ext"
  chmod 600 "$CERTS/$name-key.pem"
}

setup_certs() {
  mkdir -p "$CERTS"
  if [ ! -s "$CERTS/ca.pem" ] || [ ! -s "$CERTS/ca-key.pem" ]; then
    say "making the CA"
    rm -f "$CERTS"/*.pem
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$CERTS/ca-key.pem" 2>/dev/null
    openssl req -x509 -new -key "$CERTS/ca-key.pem" -sha256 -days 3650 \
      -subj "/O=outbox-sync local cluster/CN=outbox-sync local cluster CA" \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
      -out "$CERTS/ca.pem"
    chmod 600 "$CERTS/ca-key.pem"
  fi
  local leaf="basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid"
  # The frontend's server certificate.
  make_cert frontend "$SERVER_NAME" "$leaf
extendedKeyUsage=serverAuth
subjectAltName=DNS:$SERVER_NAME,IP:127.0.0.1"
  # The client certificate of applications (and the temporal CLI).
  make_cert client "outbox-sync" "$leaf
extendedKeyUsage=clientAuth"
  # The certificate the server's own services present to the frontend (system workers).
  make_cert internal "temporal-internal" "$leaf
extendedKeyUsage=clientAuth"
  openssl verify -CAfile "$CERTS/ca.pem" "$CERTS/frontend.pem" "$CERTS/client.pem" "$CERTS/internal.pem" >/dev/null
}

yaml_quote() { local s="${1//\\/\\\\}"; printf '"%s"' "${s//\"/\\\"}"; }

write_config() {
  mkdir -p "$DIR/config"
  local s services=""
  for s in "${SERVICES[@]}"; do
    services+="  $s:
    rpc:
      grpcPort: ${GRPC_PORT[$s]}
      membershipPort: ${MEMBERSHIP_PORT[$s]}
      bindOnLocalHost: true
"
    [ "$s" = frontend ] && services+="      httpPort: $FRONTEND_HTTP_PORT
"
  done
  # Connections per service and store: four services at most 9 each, so that the cluster leaves room
  # under PostgreSQL's default max_connections (100) for a worker's, a dispatcher's and the tests' pools
  # beside it (20 and 15 connections were measured to run out of it in test:cluster).
  store_yaml() {
    printf '      sql:
        pluginName: postgres12
        databaseName: %s
        connectAddr: %s
        connectProtocol: tcp
        user: %s
        password: %s
        maxConns: %s
        maxIdleConns: %s
        maxConnLifetime: 1h
' "$(yaml_quote "$1")" "$(yaml_quote "$PG_HOST:$PG_PORT")" "$(yaml_quote "$PG_USER")" "$(yaml_quote "$PG_PASSWORD")" "$2" "$2"
  }
  cat >"$CONFIG.tmp" <<EOF
# enable-template (the metrics port comes from OUTBOX_SYNC_CLUSTER_METRICS_PORT, set per service by start)
# Written by scripts/cluster.sh setup, again on every run: change the script, not this file.
log:
  stdout: true
  level: info

persistence:
  defaultStore: postgres-default
  visibilityStore: postgres-visibility
  numHistoryShards: 4
  datastores:
    postgres-default:
$(store_yaml "$DB" 6)
    postgres-visibility:
$(store_yaml "$VISIBILITY_DB" 3)

global:
  membership:
    maxJoinDuration: 30s
    broadcastAddress: "127.0.0.1"
  metrics:
    prometheus:
      framework: tally
      timerType: histogram
      listenAddress: '127.0.0.1:{{ env "OUTBOX_SYNC_CLUSTER_METRICS_PORT" | default "0" }}'
  tls:
    # Clients of the frontend must present a certificate signed by the CA (mutual TLS).
    frontend:
      server:
        certFile: $(yaml_quote "$CERTS/frontend.pem")
        keyFile: $(yaml_quote "$CERTS/frontend-key.pem")
        requireClientAuth: true
        clientCaFiles: [$(yaml_quote "$CERTS/ca.pem")]
      client:
        serverName: $SERVER_NAME
        rootCaFiles: [$(yaml_quote "$CERTS/ca.pem")]
    # What the server's own services (system workers, history's frontend client) present to the frontend.
    systemWorker:
      certFile: $(yaml_quote "$CERTS/internal.pem")
      keyFile: $(yaml_quote "$CERTS/internal-key.pem")
      client:
        serverName: $SERVER_NAME
        rootCaFiles: [$(yaml_quote "$CERTS/ca.pem")]
    # Internode traffic (history, matching) stays plain: every service binds to 127.0.0.1 only.

services:
$services
clusterMetadata:
  enableGlobalNamespace: false
  failoverVersionIncrement: 10
  masterClusterName: active
  currentClusterName: active
  clusterInformation:
    active:
      enabled: true
      initialFailoverVersion: 1
      rpcName: frontend
      rpcAddress: "$ADDRESS"

dcRedirectionPolicy:
  policy: noop

dynamicConfigClient:
  filepath: $(yaml_quote "$DYNAMIC_CONFIG")
  pollInterval: 10s
EOF
  mv -f "$CONFIG.tmp" "$CONFIG"
  if [ ! -f "$DYNAMIC_CONFIG" ]; then
    cat >"$DYNAMIC_CONFIG" <<'EOF'
# Dynamic config of the local cluster, read every 10 s; setup leaves this file alone once written.
# Example:
# history.persistenceMaxQPS:
#   - value: 3000
#     constraints: {}
EOF
  fi
}

write_env() {
  mkdir -p "$DIR"
  {
    echo "# The local Temporal cluster (scripts/cluster.sh); source this file. outbox-sync (config/config.ts)"
    echo "# reads the first group; the temporal CLI reads TEMPORAL_ADDRESS, _NAMESPACE, _TLS, _TLS_SERVER_NAME"
    echo "# and the second group."
    printf 'export %s=%q\n' \
      TEMPORAL_ADDRESS "$ADDRESS" \
      TEMPORAL_NAMESPACE "$NAMESPACE" \
      TEMPORAL_TLS true \
      TEMPORAL_TLS_CA_FILE "$CERTS/ca.pem" \
      TEMPORAL_TLS_CERT_FILE "$CERTS/client.pem" \
      TEMPORAL_TLS_KEY_FILE "$CERTS/client-key.pem" \
      TEMPORAL_TLS_SERVER_NAME "$SERVER_NAME"
    printf 'export %s=%q\n' \
      TEMPORAL_TLS_SERVER_CA_CERT_PATH "$CERTS/ca.pem" \
      TEMPORAL_TLS_CLIENT_CERT_PATH "$CERTS/client.pem" \
      TEMPORAL_TLS_CLIENT_KEY_PATH "$CERTS/client-key.pem"
  } >"$ENV_FILE.tmp"
  mv -f "$ENV_FILE.tmp" "$ENV_FILE"
}

cmd_setup() {
  need_binaries
  command -v psql >/dev/null || die "psql is not installed"
  command -v openssl >/dev/null || die "openssl is not installed"
  mkdir -p "$DIR" "$LOGS" "$PIDS"
  psql_admin -c 'SELECT 1' >/dev/null || die "PostgreSQL does not answer on $PG_HOST:$PG_PORT as $PG_USER"
  : >"$LOGS/setup.log"
  setup_database "$DB" temporal
  setup_database "$VISIBILITY_DB" visibility
  setup_certs
  write_config
  write_env
  say "ready: config $CONFIG, env file $ENV_FILE"
  say "the server makes no 'default' namespace by itself: run scripts/cluster.sh namespace after start"
}

# --- processes ---------------------------------------------------------------------------------------

# The pid of a running service, or nothing.
service_pid() {
  local file="$PIDS/$1.pid" pid cmdline
  [ -f "$file" ] || return 0
  pid="$(cat "$file")"
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
  cmdline="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null || true)"
  [[ "$cmdline" == *temporal-server*"--service $1 "* ]] && printf '%s\n' "$pid"
  return 0
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

temporal_cli() {
  local cli="${TEMPORAL_CLI:-}"
  if [ -z "$cli" ]; then
    if command -v temporal >/dev/null; then cli=temporal
    elif [ -x "$BIN/temporal" ]; then cli="$BIN/temporal"
    fi
  fi
  [ -n "$cli" ] && command -v "$cli" >/dev/null || return 127
  printf '%s\n' "$cli"
}

# The CLI against the cluster, over mTLS.
tctl() {
  local cli
  cli="$(temporal_cli)" || die "the temporal CLI is missing${TEMPORAL_CLI:+ (TEMPORAL_CLI=$TEMPORAL_CLI is not executable)}: put it on PATH, in .tools/bin, or name it in TEMPORAL_CLI"
  "$cli" "$@" --address "$ADDRESS" --tls-ca-path "$CERTS/ca.pem" --tls-cert-path "$CERTS/client.pem" \
    --tls-key-path "$CERTS/client-key.pem" --tls-server-name "$SERVER_NAME"
}

# Does the frontend answer over mTLS? With the CLI, a gRPC health check; without it, a TLS handshake
# that presents the client certificate.
frontend_answers() {
  if temporal_cli >/dev/null; then
    tctl operator cluster health >/dev/null 2>&1
  else
    openssl s_client -connect "$ADDRESS" -servername "$SERVER_NAME" -CAfile "$CERTS/ca.pem" \
      -cert "$CERTS/client.pem" -key "$CERTS/client-key.pem" -verify_return_error -brief </dev/null >/dev/null 2>&1
  fi
}

# Does a call through the frontend reach the service? History: describing a workflow that does not exist
# answers NotFound. Matching: describing a task queue answers. After a restart the frontend's connection
# to the service redials with a backoff of up to 10 s, failing calls with Unavailable meanwhile.
route_answers() {
  local out
  case "$1" in
    history)
      out="$(tctl workflow describe --namespace temporal-system --workflow-id cluster-sh-readiness-probe --command-timeout 3s 2>&1 || true)"
      [[ "$out" == *"not found"* ]] ;;
    matching)
      tctl task-queue describe --namespace temporal-system --task-queue cluster-sh-readiness-probe --command-timeout 3s >/dev/null 2>&1 ;;
    *) return 0 ;;
  esac
}

start_one() {
  local svc="$1" pid log="$LOGS/$1.log"
  pid="$(service_pid "$svc")"
  if [ -n "$pid" ]; then say "$svc already runs (pid $pid)"; return 0; fi
  local port
  for port in "${READY_PORT[$svc]}" "${MEMBERSHIP_PORT[$svc]}" "${METRICS_PORT[$svc]}"; do
    if port_open "$port"; then die "port $port ($svc) is taken by another process"; fi
  done
  [ -f "$log" ] && mv -f "$log" "$log.prev"
  rm -f "$PIDS/$svc.pid"
  # setsid: the service outlives this script and ignores the terminal's Ctrl-C; the shell writes its own
  # pid before it becomes the server.
  OUTBOX_SYNC_CLUSTER_METRICS_PORT="${METRICS_PORT[$svc]}" setsid bash -c \
    'echo $$ >"$1"; shift; exec "$@"' _ "$PIDS/$svc.pid" \
    "$BIN/temporal-server" --root "$DIR" --config config --env "$ENV_NAME" --allow-no-auth start --service "$svc" \
    </dev/null >"$log" 2>&1 &
  for _ in $(seq 1 50); do [ -s "$PIDS/$svc.pid" ] && break; sleep 0.1; done
  say "$svc started (pid $(cat "$PIDS/$svc.pid"), log ${log#"$ROOT"/})"
}

# Waits until each service listens (and the frontend answers over mTLS).
wait_ready() {
  local svc deadline=$((SECONDS + ${OUTBOX_SYNC_CLUSTER_START_TIMEOUT:-120}))
  for svc in "$@"; do
    until port_open "${READY_PORT[$svc]}" && { [ "$svc" != frontend ] || frontend_answers; }; do
      if [ -z "$(service_pid "$svc")" ]; then
        tail -n 30 "$LOGS/$svc.log" >&2 || true
        die "$svc exited; its log: ${LOGS#"$ROOT"/}/$svc.log"
      fi
      if [ "$SECONDS" -ge "$deadline" ]; then
        tail -n 30 "$LOGS/$svc.log" >&2 || true
        die "$svc did not answer in time; its log: ${LOGS#"$ROOT"/}/$svc.log"
      fi
      sleep 0.5
    done
  done
  # With the frontend up and the CLI at hand: the services it routes to are reached through it.
  if [ -n "$(service_pid frontend)" ] && temporal_cli >/dev/null; then
    local routed=()
    for svc in history matching; do
      if [[ " $* " == *" $svc "* || " $* " == *" frontend "* ]] && [ -n "$(service_pid "$svc")" ]; then routed+=("$svc"); fi
    done
    for svc in "${routed[@]}"; do
      until route_answers "$svc"; do
        [ "$SECONDS" -lt "$deadline" ] || die "the frontend does not reach $svc; logs: ${LOGS#"$ROOT"/}/{frontend,$svc}.log"
        sleep 0.5
      done
    done
  fi
  say "answering: $*"
}

# Stops services with SIGTERM, all at once (each takes 2 to 4 s to leave), and SIGKILL after 20 s.
signal_and_wait() {
  local svc pid
  declare -A pids=()
  for svc in "$@"; do
    pid="$(service_pid "$svc")"
    if [ -n "$pid" ]; then
      pids[$svc]="$pid"
      kill -TERM "$pid" 2>/dev/null || true
    fi
  done
  for svc in "$@"; do
    pid="${pids[$svc]:-}"
    if [ -n "$pid" ]; then
      for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
      if kill -0 "$pid" 2>/dev/null; then
        say "$svc (pid $pid) did not stop in 20 s: killing it"
        kill -KILL "$pid" 2>/dev/null || true
        for _ in $(seq 1 25); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
      fi
      say "$svc stopped"
    fi
    rm -f "$PIDS/$svc.pid"
  done
}

# The services named by `start --service S [--service T]`, `stop S`, `restart S`; all when none.
parse_services() {
  local -n out=$1; shift
  out=()
  while [ $# -gt 0 ]; do
    case "$1" in
      --service|--svc) [ $# -ge 2 ] || usage; out+=("$2"); shift 2 ;;
      --service=*) out+=("${1#*=}"); shift ;;
      -*) usage ;;
      *) out+=("$1"); shift ;;
    esac
  done
  local s
  for s in "${out[@]}"; do is_service "$s" || die "no service '$s' (one of: ${SERVICES[*]})"; done
  [ ${#out[@]} -gt 0 ] || out=("${SERVICES[@]}")
}

cmd_start() {
  local chosen svc
  parse_services chosen "$@"
  need_binaries
  [ -f "$CONFIG" ] || die "no server config: run scripts/cluster.sh setup"
  mkdir -p "$LOGS" "$PIDS"
  for svc in "${chosen[@]}"; do start_one "$svc"; done
  wait_ready "${chosen[@]}"
}

cmd_stop() {
  local chosen
  parse_services chosen "$@"
  # The worker first: its system workers take 10 s more to give up when the frontend has gone.
  [[ " ${chosen[*]} " == *" worker "* ]] && signal_and_wait worker
  local rest=() svc
  for svc in "${chosen[@]}"; do [ "$svc" = worker ] || rest+=("$svc"); done
  [ ${#rest[@]} -eq 0 ] || signal_and_wait "${rest[@]}"
}

# SIGKILL, as a crash would: no shutdown, no handing over of shards.
cmd_kill() {
  local chosen svc pid
  parse_services chosen "$@"
  for svc in "${chosen[@]}"; do
    pid="$(service_pid "$svc")"
    [ -n "$pid" ] || continue
    kill -KILL "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    rm -f "$PIDS/$svc.pid"
    say "$svc killed (pid $pid)"
  done
}

cmd_restart() {
  cmd_stop "$@"
  cmd_start "$@"
}

cmd_status() {
  local svc pid running=0
  for svc in "${SERVICES[@]}"; do
    pid="$(service_pid "$svc")"
    if [ -n "$pid" ]; then
      running=$((running + 1))
      if [ "$svc" = worker ]; then
        printf '%-9s running  pid %-7s membership 127.0.0.1:%s\n' "$svc" "$pid" "${MEMBERSHIP_PORT[$svc]}"
      else
        printf '%-9s running  pid %-7s gRPC 127.0.0.1:%s\n' "$svc" "$pid" "${GRPC_PORT[$svc]}"
      fi
    else
      printf '%-9s stopped\n' "$svc"
    fi
  done
  if [ -n "$(service_pid frontend)" ] && [ -f "$CERTS/client.pem" ] && frontend_answers; then
    printf 'frontend answers over mTLS on %s\n' "$ADDRESS"
    [ "$running" -eq ${#SERVICES[@]} ] && return 0
  else
    printf 'frontend does not answer on %s\n' "$ADDRESS"
  fi
  return 1
}

cmd_namespace() {
  [ -f "$CERTS/client.pem" ] || die "no certificates: run scripts/cluster.sh setup"
  temporal_cli >/dev/null || tctl   # tctl says what is missing
  write_env
  frontend_answers || die "the frontend does not answer on $ADDRESS: run scripts/cluster.sh start"
  if tctl operator namespace describe --namespace "$NAMESPACE" >/dev/null 2>&1; then
    say "namespace $NAMESPACE exists"
    return 0
  fi
  say "creating namespace $NAMESPACE (retention $RETENTION)"
  tctl operator namespace create --namespace "$NAMESPACE" --retention "$RETENTION" >/dev/null
  # The frontends cache namespaces: wait until the new one is served.
  for _ in $(seq 1 60); do
    tctl workflow list --namespace "$NAMESPACE" --limit 1 >/dev/null 2>&1 && { say "namespace $NAMESPACE ready"; return 0; }
    sleep 0.5
  done
  die "namespace $NAMESPACE was created but is not served yet"
}

cmd_up() {
  cmd_build
  cmd_setup
  cmd_start
  cmd_namespace
}

[ $# -ge 1 ] || usage
command="$1"; shift
case "$command" in
  build|setup|status|namespace|up) [ $# -eq 0 ] || usage; "cmd_$command" ;;
  start|stop|restart|kill) "cmd_$command" "$@" ;;
  -h|--help|help) usage ;;
  *) usage ;;
esac
