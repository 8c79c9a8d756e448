#!/usr/bin/env bash
# Starts (or stops) a throwaway 3-node Redis Cluster on 127.0.0.1 for the
# store tests: masters only, no persistence, state in a temporary directory.
#
#   scripts/redis-cluster.sh start   # prints the node URLs to export as
#                                    # SESSION_TEST_REDIS_CLUSTER_URLS
#   scripts/redis-cluster.sh stop
#
# Ports: REDIS_CLUSTER_PORTS (default "7101 7102 7103").
# State dir: REDIS_CLUSTER_DIR (default /tmp/sealed-session-redis-cluster).
set -euo pipefail

PORTS=(${REDIS_CLUSTER_PORTS:-7101 7102 7103})
DIR=${REDIS_CLUSTER_DIR:-/tmp/sealed-session-redis-cluster}

urls() {
    local out=()
    for p in "${PORTS[@]}"; do out+=("redis://127.0.0.1:$p"); done
    (IFS=,; echo "${out[*]}")
}

stop() {
    for p in "${PORTS[@]}"; do
        redis-cli -h 127.0.0.1 -p "$p" shutdown nosave >/dev/null 2>&1 || true
    done
    # Wait for the ports to close, so a following start can bind them.
    for p in "${PORTS[@]}"; do
        for _ in $(seq 50); do
            redis-cli -h 127.0.0.1 -p "$p" ping >/dev/null 2>&1 || break
            sleep 0.1
        done
    done
    rm -rf "$DIR"
}

start() {
    command -v redis-server >/dev/null || { echo "redis-cluster.sh: redis-server is not installed (apt-get install redis-server)" >&2; exit 1; }
    command -v redis-cli >/dev/null || { echo "redis-cluster.sh: redis-cli is not installed (apt-get install redis-tools)" >&2; exit 1; }
    stop
    mkdir -p "$DIR"
    for p in "${PORTS[@]}"; do
        mkdir -p "$DIR/$p"
        redis-server --port "$p" --bind 127.0.0.1 --cluster-enabled yes \
            --cluster-config-file "$DIR/$p/nodes.conf" --cluster-node-timeout 2000 \
            --save "" --appendonly no --dir "$DIR/$p" \
            --daemonize yes --logfile "$DIR/$p/redis.log" --pidfile "$DIR/$p/redis.pid"
    done
    for p in "${PORTS[@]}"; do
        for i in $(seq 100); do
            redis-cli -h 127.0.0.1 -p "$p" ping >/dev/null 2>&1 && break
            [ "$i" = 100 ] && { echo "redis-cluster.sh: node on port $p did not start; see $DIR/$p/redis.log" >&2; exit 1; }
            sleep 0.1
        done
    done
    local nodes=()
    for p in "${PORTS[@]}"; do nodes+=("127.0.0.1:$p"); done
    redis-cli --cluster create "${nodes[@]}" --cluster-replicas 0 --cluster-yes >"$DIR/create.log" 2>&1 || {
        echo "redis-cluster.sh: cluster create failed:" >&2; cat "$DIR/create.log" >&2; exit 1; }
    for i in $(seq 100); do
        ok=1
        for p in "${PORTS[@]}"; do
            redis-cli -h 127.0.0.1 -p "$p" cluster info 2>/dev/null | grep -q '^cluster_state:ok' || ok=0
        done
        [ "$ok" = 1 ] && break
        [ "$i" = 100 ] && { echo "redis-cluster.sh: cluster_state did not become ok within 10 s" >&2; exit 1; }
        sleep 0.1
    done
    urls
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    urls) urls ;;
    *) echo "usage: $0 start|stop|urls" >&2; exit 2 ;;
esac
