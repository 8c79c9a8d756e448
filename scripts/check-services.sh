#!/usr/bin/env bash
# Checks that the services the store tests need answer on loopback:
# PostgreSQL, MariaDB/MySQL and Redis. Exits non-zero naming each one that
# does not. Reads the same variables as the tests, with these defaults:
#
#   SESSION_TEST_POSTGRES_URL  postgres://postgres@127.0.0.1:5432/test
#   SESSION_TEST_MYSQL_URL     mysql://root@127.0.0.1:3306/test
#   SESSION_TEST_REDIS_URL     redis://127.0.0.1:6379
set -uo pipefail

PG=${SESSION_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}
MY=${SESSION_TEST_MYSQL_URL:-mysql://root@127.0.0.1:3306/test}
RD=${SESSION_TEST_REDIS_URL:-redis://127.0.0.1:6379}

# host and port of scheme://[user[:pass]@]host:port[/db]
hostport() {
    local rest=${1#*://}
    rest=${rest##*@}
    rest=${rest%%/*}
    rest=${rest%%\?*}
    echo "${rest%%:*} ${rest##*:}"
}

failed=()

read -r host port < <(hostport "$PG")
if command -v pg_isready >/dev/null; then
    pg_isready -q -h "$host" -p "$port" -t 5 || failed+=("PostgreSQL at $host:$port (SESSION_TEST_POSTGRES_URL=$PG) does not accept connections")
elif ! (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null; then
    failed+=("PostgreSQL at $host:$port (SESSION_TEST_POSTGRES_URL=$PG) is not listening")
fi

read -r host port < <(hostport "$MY")
if command -v mariadb-admin >/dev/null || command -v mysqladmin >/dev/null; then
    admin=$(command -v mariadb-admin || command -v mysqladmin)
    user=${MY#*://}; user=${user%%@*}; user=${user%%:*}
    "$admin" --protocol=TCP -h "$host" -P "$port" -u "$user" --connect-timeout=5 ping >/dev/null 2>&1 \
        || failed+=("MariaDB/MySQL at $host:$port (SESSION_TEST_MYSQL_URL=$MY) does not answer a ping as user $user")
elif ! (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null; then
    failed+=("MariaDB/MySQL at $host:$port (SESSION_TEST_MYSQL_URL=$MY) is not listening")
fi

read -r host port < <(hostport "$RD")
if command -v redis-cli >/dev/null; then
    [ "$(redis-cli -h "$host" -p "$port" ping 2>/dev/null)" = PONG ] \
        || failed+=("Redis at $host:$port (SESSION_TEST_REDIS_URL=$RD) does not answer PING")
elif ! (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null; then
    failed+=("Redis at $host:$port (SESSION_TEST_REDIS_URL=$RD) is not listening")
fi

if [ ${#failed[@]} -gt 0 ]; then
    for f in "${failed[@]}"; do echo "check-services: $f" >&2; done
    echo "check-services: start the missing services (see session-stores/README.md) or unset CI to skip their tests" >&2
    exit 1
fi
echo "check-services: PostgreSQL, MariaDB and Redis answer"
