#!/usr/bin/env bash
# Runs the apply function locally: a redis-server under $STATE (unless REDIS_ADDR points at one), then
# the function on the Functions Framework on $PORT. Ctrl-C stops both.
set -euo pipefail
STATE=${STATE:-.state}
REDIS_PORT=${REDIS_PORT:-6390}
PORT=${PORT:-8080}
mkdir -p "$STATE/redis"

if [ -z "${REDIS_ADDR:-}" ]; then
  REDIS_ADDR=127.0.0.1:$REDIS_PORT
  if ! redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1; then
    redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$STATE/redis" --save "" --appendonly no \
      --daemonize yes --pidfile "$PWD/$STATE/redis/redis.pid" --logfile "$PWD/$STATE/redis/redis.log"
    trap 'kill "$(cat "$STATE/redis/redis.pid")" 2>/dev/null || true' EXIT
    for _ in $(seq 50); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
  fi
fi
export REDIS_ADDR PORT HOST=127.0.0.1
# Locally, bad messages are answered 400 instead of being published to a dead-letter topic.
export DEAD_LETTER_TOPIC=${DEAD_LETTER_TOPIC:-nack}

go build -o "$STATE/cloudsql-cache-function" ./cmd/cloudsql-cache-function
cat <<MSG
cloudsql-cache function on http://127.0.0.1:$PORT/ , Redis at $REDIS_ADDR. Try:
  data=\$(base64 -w0 testdata/debezium/mysql-create-noschema-serde-testfixture.json)
  curl -s http://127.0.0.1:$PORT/ -d '{"message":{"messageId":"1","orderingKey":"{\"id\":1004}","data":"'"\$data"'"}}'
  redis-cli -p ${REDIS_ADDR##*:} GET inventory.customers:1004
Ctrl-C stops it.
MSG
"$STATE/cloudsql-cache-function"
