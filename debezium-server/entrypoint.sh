#!/usr/bin/env bash
# Entry point of the cloudsql-cache Debezium Server image: check the environment, render
# config/application.properties from the template, then exec Debezium Server (so it is PID 1's only
# child and its exit status, 1 on any connector or publish failure, is the container's).
set -euo pipefail

SERVER_HOME="${SERVER_HOME:-/debezium}"
template="${SERVER_HOME}/application.properties.tmpl"
config="${SERVER_HOME}/config/application.properties"

fail() {
  echo "cloudsql-cache debezium entrypoint: $*" >&2
  exit 2
}

missing=()
for name in GCP_PROJECT PUBSUB_REGION DB_HOST DB_USER DB_PASSWORD DB_SERVER_ID DB_STATE_DATABASE \
  TOPIC_PREFIX DATABASE_INCLUDE_LIST TABLE_INCLUDE_LIST; do
  [ -n "${!name:-}" ] || missing+=("$name")
done
[ ${#missing[@]} -eq 0 ] || fail "required environment variables are not set: ${missing[*]}"

[[ "$DB_SERVER_ID" =~ ^[0-9]+$ ]] && [ "$DB_SERVER_ID" -ge 1 ] && [ "$DB_SERVER_ID" -le 4294967295 ] ||
  fail "DB_SERVER_ID=$DB_SERVER_ID is not a MySQL server_id (1..4294967295)"

# Pub/Sub topic IDs start with a letter, hold letters, digits and - _ . ~ + %, and do not start with
# "goog"; Debezium's topics are <TOPIC_PREFIX>.<db>.<table> and <HEARTBEAT_PREFIX>.<TOPIC_PREFIX>.
topic_id='^[A-Za-z][A-Za-z0-9._~+%-]*$'
for name in TOPIC_PREFIX HEARTBEAT_PREFIX; do
  value="${!name:-debezium-heartbeat}"
  [[ "$value" =~ $topic_id ]] && [[ ! "${value,,}" =~ ^goog ]] ||
    fail "$name=$value would not make a valid Pub/Sub topic name (start with a letter; letters, digits, - _ . ~ + %)"
done

# The state database's name goes into a regular expression (database.include.list, for the signal
# table) and a property value: plain letters, digits and underscores only.
[[ "$DB_STATE_DATABASE" =~ ^[A-Za-z0-9_]{1,64}$ ]] ||
  fail "DB_STATE_DATABASE=$DB_STATE_DATABASE: want 1-64 letters, digits or underscores"

# Debezium keeps its offsets and schema history in the state database: never capture its tables (the
# configuration adds it to database.include.list itself, for the signal table only).
IFS=',' read -r -a databases <<<"$DATABASE_INCLUDE_LIST"
for db in "${databases[@]}"; do
  [ "$db" != "$DB_STATE_DATABASE" ] || fail "DATABASE_INCLUDE_LIST must not include the state database $DB_STATE_DATABASE"
done

cp "$template" "$config"
if [ -n "${COLUMN_EXCLUDE_LIST:-}" ]; then
  # Columns never read from the binlog event into the message: they never leave the database.
  printf '\ndebezium.source.column.exclude.list=${COLUMN_EXCLUDE_LIST}\n' >>"$config"
fi

# EVENT_FORMAT: how row changes are published (README "Event format"). compact: the row plus its
# metadata (compact.properties, appended); full: Debezium's envelope with before, after and source.
case "${EVENT_FORMAT:=full}" in
  compact)
    cat "${SERVER_HOME}/compact.properties" >>"$config"
    # The compact format's truncate route is a scripting SMT (Groovy), in lib_opt/.
    export ENABLE_DEBEZIUM_SCRIPTING=true
    ;;
  full) ;;
  *) fail "EVENT_FORMAT=$EVENT_FORMAT: want compact or full" ;;
esac

# run.sh finds the runner jar, lib/ and config/ relative to the working directory (the image's WORKDIR
# is SERVER_HOME; a local run's may not be).
cd "$SERVER_HOME"
echo "cloudsql-cache debezium entrypoint: streaming ${TABLE_INCLUDE_LIST} from ${DB_HOST} (server id ${DB_SERVER_ID}) to Pub/Sub ${GCP_PROJECT} ${PUBSUB_REGION}, topics ${TOPIC_PREFIX}.<db>.<table>" >&2
exec "${SERVER_HOME}/run.sh" "$@"
