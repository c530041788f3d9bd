data "google_project" "this" {
  project_id = var.project_id
}

locals {
  project_number = data.google_project.this.number

  # On every resource that takes labels (the module sets no provider default_labels: it configures no
  # provider).
  labels = merge(var.labels, { app = "cloudsql-cache" })

  # The Pub/Sub service agent: forwards dead letters and signs the push OIDC tokens.
  pubsub_service_agent = "serviceAccount:service-${local.project_number}@gcp-sa-pubsub.iam.gserviceaccount.com"

  # db.table -> Debezium's topic for it (topic.prefix + "." + db + "." + table).
  table_topics = { for t in var.tables : t => "${var.topic_prefix}.${t}" }

  # Debezium's heartbeat topic is <topic.heartbeat.prefix>.<topic.prefix>. The prefix must make a valid
  # Pub/Sub topic ID (start with a letter): the Debezium default "__debezium-heartbeat" does not.
  heartbeat_prefix = "debezium-heartbeat"
  heartbeat_topic  = "${local.heartbeat_prefix}.${var.topic_prefix}"

  databases = distinct([for t in var.tables : split(".", t)[0]])

  redis_ca_path = "/etc/cloudsql-cache/redis-ca"
  redis_ca_file = "ca.pem"

  # The function's environment, every name one of function.Vars() (terraform/config_test.go holds it to
  # that). Empty values are left out so the function applies its own default. REDIS_PASSWORD (the
  # standalone engine's AUTH string) comes from Secret Manager and is set next to these in function.tf;
  # the cluster engines authenticate with the service account's access token (REDIS_IAM_AUTH).
  function_env = {
    REDIS_MODE            = local.redis_mode
    REDIS_ADDR            = local.redis_addr
    REDIS_TLS             = "true"
    REDIS_CA_FILE         = "${local.redis_ca_path}/${local.redis_ca_file}"
    REDIS_TIMEOUT         = var.redis_timeout
    REDIS_IAM_AUTH        = local.redis_standalone ? "" : "true"
    DEAD_LETTER_TOPIC     = google_pubsub_topic.dead_letter.id
    CACHE_TABLES          = join(",", var.tables)
    CACHE_EXCLUDE_COLUMNS = join(",", var.exclude_columns)
    CACHE_KEY_TEMPLATE    = var.key_template
    CACHE_KEY_TEMPLATES   = join(",", [for k, v in var.key_templates : "${k}=${v}"])
    CACHE_VERSION_EPOCH   = tostring(var.version_epoch)
    CACHE_TOMBSTONE_TTL   = var.tombstone_ttl
    APPLY_TIMEOUT         = var.apply_timeout
    MAX_BODY_BYTES        = var.max_body_bytes > 0 ? tostring(var.max_body_bytes) : ""
    # One Redis connection per request Cloud Run lets in at once, and two for the background calls (the
    # policy's heartbeat): with go-redis's default of 10 per vCPU, 70 of 80 concurrent requests waited
    # for a connection and failed with "connection pool timeout" after REDIS_TIMEOUT under a burst.
    # function_max_instances × this is the most clients the function holds on Memorystore (65,000 max).
    REDIS_POOL_SIZE      = tostring(var.function_concurrency + 2)
    REDIS_WAIT_REPLICAS  = tostring(local.redis_wait_replicas)
    REDIS_WAIT_TIMEOUT   = var.redis_wait_timeout
    REDIS_WATCH_INTERVAL = local.redis_watch_interval
    REPAIR_SUBSCRIPTIONS = local.repair_by_seek ? join(",", local.push_subscription_names) : ""
    REPAIR_SEEK_MARGIN   = var.repair_seek_margin
    REPAIR_SEEK_MAX      = local.repair_by_seek ? local.topic_retention : var.message_retention_duration
  }

  # The standard tier's replica and a cluster's shard replicas are asynchronous: acknowledge a change
  # only once one holds it (on a cluster, a replica of the shard that took it). The loss watcher does
  # not run on a cluster engine yet (the function refuses REPAIR_SUBSCRIPTIONS with
  # REDIS_MODE=cluster): it speaks for one node.
  redis_wait_replicas  = coalesce(var.redis_wait_replicas, (var.redis_engine == "redis" ? var.redis_tier == "STANDARD_HA" : var.redis_replica_count > 0) ? 1 : 0)
  redis_watch_interval = var.redis_engine == "redis" ? var.redis_watch_interval : "0"
  repair_by_seek       = var.redis_engine == "redis" && var.repair_by_seek && var.redis_watch_interval != "0"

  # What the repair's seek must still find on the topics, in seconds: a restore from the last RDB
  # snapshot loses up to its period; the seek starts repair_seek_margin before the surviving heartbeat,
  # which is at most redis_watch_interval older than the loss; and it happens once Memorystore has
  # brought the node back and the watcher has looked (an hour allowed). By default a day more, so that
  # a repair failing (alert "repair after a Redis loss failed", retried every check) can be fixed before
  # the retention passes the loss.
  repair_retention_needed = ceil(
    (var.redis_persistence_mode == "RDB" ? local.rdb_snapshot_seconds[var.redis_rdb_snapshot_period] : 0) +
    local.go_seconds[var.repair_seek_margin] + (var.redis_watch_interval == "0" ? 0 : local.go_seconds[var.redis_watch_interval]) + 3600
  )
  rdb_snapshot_seconds = { ONE_HOUR = 3600, SIX_HOURS = 21600, TWELVE_HOURS = 43200, TWENTY_FOUR_HOURS = 86400 }
  # Go durations (validated as such) in seconds: the sum of their number-unit parts.
  go_seconds = { for d in toset([var.repair_seek_margin, var.redis_watch_interval]) : d => d == "0" ? 0 : sum([
    for p in regexall("([0-9]+(?:\\.[0-9]+)?)(ns|us|ms|s|m|h)", d) : tonumber(p[0]) * { ns = 1e-9, us = 1e-6, ms = 1e-3, s = 1, m = 60, h = 3600 }[p[1]]
  ]) }
  topic_retention = var.topic_message_retention_duration != null ? var.topic_message_retention_duration : (
    local.repair_by_seek ? "${min(local.repair_retention_needed + 86400, 2678400)}s" : null
  )

  # The push subscriptions' full names, built from their names rather than the resources: the
  # subscriptions push to the function, so the function's environment cannot refer to them.
  push_subscription_names = [for t in concat(values(local.table_topics), [var.topic_prefix]) : "projects/${var.project_id}/subscriptions/${t}.apply"]
}

resource "google_project_service" "apis" {
  for_each = setunion(toset([
    "artifactregistry.googleapis.com",
    "cloudbuild.googleapis.com",
    "cloudresourcemanager.googleapis.com",
    "compute.googleapis.com",
    "iam.googleapis.com",
    "logging.googleapis.com",
    "monitoring.googleapis.com",
    "pubsub.googleapis.com",
    "redis.googleapis.com",
    "run.googleapis.com",
    "secretmanager.googleapis.com",
    "servicenetworking.googleapis.com",
    "sqladmin.googleapis.com",
    "telemetry.googleapis.com",
    ]),
    # The cluster engines' Private Service Connect automation (service connection policies), and the
    # Valkey engine's own API.
    var.redis_engine != "redis" ? ["networkconnectivity.googleapis.com", "serviceconsumermanagement.googleapis.com"] : [],
    var.redis_engine == "valkey" ? ["memorystore.googleapis.com"] : [],
  )

  project = var.project_id
  service = each.value
  # Other workloads in the project may use these APIs: never switch them off on destroy.
  disable_on_destroy = false
}

resource "google_artifact_registry_repository" "images" {
  project       = var.project_id
  labels        = local.labels
  location      = var.region
  repository_id = var.name_prefix
  format        = "DOCKER"
  description   = "cloudsql-cache images: the apply function, Debezium Server and the operator tools."

  docker_config {
    immutable_tags = true
  }

  depends_on = [google_project_service.apis]
}
