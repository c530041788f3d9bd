# Every input of the module. Each validation's message names the input, says what it accepts and shows
# the value given, so a plan refused by one says what to fix. terraform/tests/validation.tftest.hcl
# holds each validation to a bad value; README.md's Inputs table is generated from this file.

# ---------------------------------------------------------------------------------------------------
# Project
# ---------------------------------------------------------------------------------------------------

variable "project_id" {
  description = "Google Cloud project that holds the whole stack."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a project ID (6-30 lowercase letters, digits or hyphens, starting with a letter), not a project name or number: got \"${var.project_id}\"."
  }
}

variable "region" {
  description = "Region of every regional resource (Cloud Run, Cloud SQL, Memorystore, Artifact Registry, the subnet)."
  type        = string
  default     = "europe-west1"

  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]+$", var.region))
    error_message = "region must be a Google Cloud region such as europe-west1 (not a zone such as europe-west1-b): got \"${var.region}\"."
  }
}

variable "name_prefix" {
  description = "Prefix of every resource name. Lowercase letters, digits and dashes, starting with a letter."
  type        = string
  default     = "cloudsql-cache"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{2,19}$", var.name_prefix))
    error_message = "name_prefix must be 3-20 lowercase letters, digits or dashes and start with a letter (service account IDs derive from it): got \"${var.name_prefix}\"."
  }
}

variable "labels" {
  description = "Labels added to every resource that takes labels, besides app = \"cloudsql-cache\"."
  type        = map(string)
  default     = {}

  validation {
    condition     = alltrue([for k, v in var.labels : can(regex("^[a-z][a-z0-9_-]{0,62}$", k)) && can(regex("^[a-z0-9_-]{0,63}$", v))])
    error_message = "labels keys must be 1-63 lowercase letters, digits, '_' or '-' starting with a letter, and values at most 63 of the same: got ${jsonencode(var.labels)}."
  }
}

variable "deletion_protection" {
  description = "Protect the Cloud Run services, the worker pool and the Redis instance or cluster from `terraform destroy` (a cluster in the API as well). Set to false (and apply) before tearing down."
  type        = bool
  default     = true
}

# ---------------------------------------------------------------------------------------------------
# Network
# ---------------------------------------------------------------------------------------------------

variable "create_network" {
  description = "Create the VPC and subnet. false: use the existing VPC `network_name` (its subnet `subnet_name` in `region` must exist)."
  type        = bool
  default     = true
}

variable "network_name" {
  description = "VPC name (created, or existing when create_network = false). An existing Cloud SQL instance must have its private IP on this VPC."
  type        = string
  default     = "cloudsql-cache"

  validation {
    condition     = can(regex("^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$", var.network_name))
    error_message = "network_name must be a VPC name: 1-63 lowercase letters, digits or dashes, starting with a letter: got \"${var.network_name}\"."
  }
}

variable "subnet_name" {
  description = "Subnet Cloud Run Direct VPC egress takes its addresses from (created, or existing when create_network = false)."
  type        = string
  default     = "cloudsql-cache-run"

  validation {
    condition     = can(regex("^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$", var.subnet_name))
    error_message = "subnet_name must be a subnet name: 1-63 lowercase letters, digits or dashes, starting with a letter: got \"${var.subnet_name}\"."
  }
}

variable "subnet_cidr" {
  description = "CIDR of the created subnet. Direct VPC egress uses up to 2 addresses per instance: size it for twice function_max_instances plus Debezium, /26 at least."
  type        = string
  default     = "10.10.0.0/24"

  validation {
    condition     = can(cidrnetmask(var.subnet_cidr)) && try(tonumber(split("/", var.subnet_cidr)[1]) <= 26, false)
    error_message = "subnet_cidr must be an IPv4 CIDR range of /26 or larger (Direct VPC egress takes up to 2 addresses per instance): got \"${var.subnet_cidr}\"."
  }
}

variable "create_private_service_access" {
  description = "Allocate a range and create the private services access peering (Cloud SQL and Memorystore private IPs). false if the VPC already has one."
  type        = bool
  default     = true
}

variable "private_service_range_address" {
  description = "First address of the range allocated to private services access (kept in RFC 1918 space so Cloud Run's PRIVATE_RANGES_ONLY egress routes it into the VPC)."
  type        = string
  default     = "10.100.0.0"

  validation {
    condition = try(
      cidrhost("${var.private_service_range_address}/32", 0) == var.private_service_range_address &&
      (cidrsubnet("${var.private_service_range_address}/8", 0, 0) == "10.0.0.0/8" ||
        cidrsubnet("${var.private_service_range_address}/12", 0, 0) == "172.16.0.0/12" ||
      cidrsubnet("${var.private_service_range_address}/16", 0, 0) == "192.168.0.0/16"),
      false
    )
    error_message = "private_service_range_address must be an IPv4 address in 10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16 (PRIVATE_RANGES_ONLY egress routes only those into the VPC): got \"${var.private_service_range_address}\"."
  }
}

variable "private_service_range_prefix_length" {
  description = "Prefix length of the private services access range."
  type        = number
  default     = 16

  validation {
    condition     = var.private_service_range_prefix_length >= 8 && var.private_service_range_prefix_length <= 24 && floor(var.private_service_range_prefix_length) == var.private_service_range_prefix_length
    error_message = "private_service_range_prefix_length must be a whole number from 8 to 24 (private services access needs at least a /24): got ${var.private_service_range_prefix_length}."
  }
}

# ---------------------------------------------------------------------------------------------------
# Cloud SQL (source)
# ---------------------------------------------------------------------------------------------------

variable "create_cloudsql_instance" {
  description = "Create the Cloud SQL for MySQL instance. false: capture `existing_cloudsql_instance` instead (it must have a private IP on network_name, binary logging on and binlog_row_image=full)."
  type        = bool
  default     = true
}

variable "existing_cloudsql_instance" {
  description = "Name of an existing Cloud SQL for MySQL instance in project_id, used when create_cloudsql_instance = false."
  type        = string
  default     = ""

  validation {
    condition     = var.create_cloudsql_instance || can(regex("^[a-z][a-z0-9-]{0,96}$", var.existing_cloudsql_instance))
    error_message = "existing_cloudsql_instance must name the Cloud SQL instance to capture (lowercase letters, digits, dashes) when create_cloudsql_instance = false: got \"${var.existing_cloudsql_instance}\"."
  }

  validation {
    condition     = !var.create_cloudsql_instance || var.existing_cloudsql_instance == ""
    error_message = "existing_cloudsql_instance is only read when create_cloudsql_instance = false: set that too, or remove existing_cloudsql_instance (got \"${var.existing_cloudsql_instance}\")."
  }
}

variable "cloudsql_database_version" {
  description = "MySQL version of a created instance."
  type        = string
  default     = "MYSQL_8_4"

  validation {
    condition     = startswith(var.cloudsql_database_version, "MYSQL_8")
    error_message = "cloudsql_database_version must be a MySQL 8.x version such as MYSQL_8_4 or MYSQL_8_0 (Debezium 3.x MySQL connector, GTIDs, binlog_row_image): got \"${var.cloudsql_database_version}\"."
  }
}

variable "cloudsql_tier" {
  description = "Machine type of a created instance."
  type        = string
  default     = "db-custom-2-8192"

  validation {
    condition     = startswith(var.cloudsql_tier, "db-")
    error_message = "cloudsql_tier must be a Cloud SQL machine type such as db-custom-2-8192 or db-perf-optimized-N-4: got \"${var.cloudsql_tier}\"."
  }
}

variable "cloudsql_edition" {
  description = "Edition of a created instance: ENTERPRISE or ENTERPRISE_PLUS (the latter needs a db-perf-optimized-N-* tier)."
  type        = string
  default     = "ENTERPRISE"

  validation {
    condition     = contains(["ENTERPRISE", "ENTERPRISE_PLUS"], var.cloudsql_edition)
    error_message = "cloudsql_edition must be ENTERPRISE or ENTERPRISE_PLUS: got \"${var.cloudsql_edition}\"."
  }
}

variable "cloudsql_availability_type" {
  description = "REGIONAL (HA, failover keeps GTIDs so Debezium resumes) or ZONAL."
  type        = string
  default     = "REGIONAL"

  validation {
    condition     = contains(["REGIONAL", "ZONAL"], var.cloudsql_availability_type)
    error_message = "cloudsql_availability_type must be REGIONAL (high availability) or ZONAL: got \"${var.cloudsql_availability_type}\"."
  }
}

variable "binlog_retention_days" {
  description = "Days of transaction logs (binlogs) a created instance keeps: 1-7 for ENTERPRISE, 1-35 for ENTERPRISE_PLUS. Debezium can resume after an outage shorter than this; longer ones trigger a re-snapshot (snapshot.mode=when_needed)."
  type        = number
  default     = 7

  validation {
    condition     = var.binlog_retention_days >= 1 && var.binlog_retention_days <= (var.cloudsql_edition == "ENTERPRISE_PLUS" ? 35 : 7) && floor(var.binlog_retention_days) == var.binlog_retention_days
    error_message = "binlog_retention_days must be a whole number from 1 to ${var.cloudsql_edition == "ENTERPRISE_PLUS" ? 35 : 7} (the transaction log retention Cloud SQL for MySQL ${var.cloudsql_edition} offers; ENTERPRISE_PLUS keeps up to 35 days): got ${var.binlog_retention_days}."
  }
}

variable "cloudsql_deletion_protection" {
  description = "Deletion protection of a created Cloud SQL instance, both in Terraform and in the Cloud SQL API."
  type        = bool
  default     = true
}

# ---------------------------------------------------------------------------------------------------
# What to capture and how to cache it (the function's CACHE_* configuration)
# ---------------------------------------------------------------------------------------------------

variable "tables" {
  description = "Tables to capture and cache, as db.table. Each gets its own Pub/Sub topic <topic_prefix>.<db>.<table> and push subscription."
  type        = list(string)

  validation {
    condition     = length(var.tables) > 0 && alltrue([for t in var.tables : can(regex("^[A-Za-z0-9_]+\\.[A-Za-z0-9_]+$", t))])
    error_message = "tables must be a non-empty list of db.table names made of letters, digits and underscores (they become Pub/Sub topic names): got ${jsonencode(var.tables)}."
  }

  validation {
    condition     = length(distinct(var.tables)) == length(var.tables)
    error_message = "tables lists a table twice: ${jsonencode(var.tables)}."
  }
}

variable "exclude_columns" {
  description = "Columns never captured nor cached, as db.table.column (Debezium column.exclude.list and the function's CACHE_EXCLUDE_COLUMNS)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for c in var.exclude_columns : can(regex("^[A-Za-z0-9_]+\\.[A-Za-z0-9_]+\\.[A-Za-z0-9_]+$", c))])
    error_message = "exclude_columns entries must be db.table.column: got ${jsonencode(var.exclude_columns)}."
  }

  validation {
    condition     = alltrue([for c in var.exclude_columns : contains(var.tables, join(".", slice(split(".", c), 0, 2))) if length(split(".", c)) == 3])
    error_message = "exclude_columns names a column of a table that is not in tables (add the table, or remove the column): ${jsonencode([for c in var.exclude_columns : c if length(split(".", c)) == 3 && !contains(var.tables, join(".", slice(split(".", c), 0, 2)))])}."
  }
}

variable "key_template" {
  description = "CACHE_KEY_TEMPLATE: Redis key of every table without its own template. Empty: the function's default."
  type        = string
  default     = ""
}

variable "key_templates" {
  description = "CACHE_KEY_TEMPLATES: per-table key templates, { \"db.table\" = \"template\" }."
  type        = map(string)
  default     = {}

  validation {
    condition     = alltrue([for k, v in var.key_templates : !strcontains(k, ",") && !strcontains(v, ",") && !strcontains(k, "=") && v != ""])
    error_message = "key_templates keys and templates must not contain commas (the variable is a comma-separated list), keys must not contain '=', and no template may be empty: got ${jsonencode(var.key_templates)}."
  }

  validation {
    condition     = alltrue([for k in keys(var.key_templates) : contains(var.tables, k)])
    error_message = "key_templates has a template for a table that is not in tables (add the table, or remove the template): ${jsonencode([for k in keys(var.key_templates) : k if !contains(var.tables, k)])}."
  }
}

variable "version_columns" {
  description = "Removed: must stay empty. Tables are ordered by binlog position (README.md: Versions)."
  type        = map(string)
  default     = {}

  validation {
    condition     = length(var.version_columns) == 0
    error_message = "version_columns was removed (got ${jsonencode(var.version_columns)}): no column orders commits (an ON UPDATE CURRENT_TIMESTAMP is the statement's start, not its commit), so every table is ordered by binlog position. Remove it; if it was set, raise version_epoch by one and re-snapshot (README.md, \"Versions\")."
  }
}

variable "version_epoch" {
  description = "CACHE_VERSION_EPOCH. Raise it by one whenever the database is restored from a backup, cloned or replaced: binlog positions start over and would otherwise look older than the cached versions."
  type        = number
  default     = 0

  validation {
    condition     = var.version_epoch >= 0 && floor(var.version_epoch) == var.version_epoch
    error_message = "version_epoch must be a non-negative integer: got ${var.version_epoch}."
  }
}

variable "tombstone_ttl" {
  description = "CACHE_TOMBSTONE_TTL: how long a deleted row's tombstone is kept. Must outlast subscription retention and any replay."
  type        = string
  default     = "168h"

  validation {
    condition     = can(regex("^([0-9]+(\\.[0-9]+)?(ns|us|ms|s|m|h))+$", var.tombstone_ttl))
    error_message = "tombstone_ttl must be a Go duration such as 168h or 30m: got \"${var.tombstone_ttl}\"."
  }
}

variable "apply_timeout" {
  description = "APPLY_TIMEOUT of one delivery. Keep it well under ack_deadline_seconds."
  type        = string
  default     = "10s"

  validation {
    condition     = can(regex("^([0-9]+(\\.[0-9]+)?(ns|us|ms|s|m|h))+$", var.apply_timeout))
    error_message = "apply_timeout must be a Go duration such as 10s or 1500ms: got \"${var.apply_timeout}\"."
  }
}

variable "redis_timeout" {
  description = "REDIS_TIMEOUT of one Redis command."
  type        = string
  default     = "1s"

  validation {
    condition     = can(regex("^([0-9]+(\\.[0-9]+)?(ns|us|ms|s|m|h))+$", var.redis_timeout))
    error_message = "redis_timeout must be a Go duration such as 1s or 500ms: got \"${var.redis_timeout}\"."
  }
}

variable "redis_wait_replicas" {
  description = "REDIS_WAIT_REPLICAS: replicas that must hold a change (Redis WAIT) before the function acknowledges it. null (default): 1 with redis_tier STANDARD_HA, whose replication is asynchronous, 0 with BASIC, which has no replica; with a cluster engine 1 (a replica of the shard that took the change) unless redis_replica_count is 0. 0 acknowledges once the primary has it: a failover can then lose acknowledged changes until the loss watcher's repair replays them (on one instance; a cluster has no loss watcher yet)."
  type        = number
  default     = null

  validation {
    condition     = var.redis_wait_replicas == null || try(var.redis_wait_replicas >= 0 && var.redis_wait_replicas <= 1 && floor(var.redis_wait_replicas) == var.redis_wait_replicas, false)
    error_message = "redis_wait_replicas must be null, 0 or 1 (a Memorystore standard tier without read replicas has one replica): got ${jsonencode(var.redis_wait_replicas)}."
  }
  validation {
    condition     = var.redis_wait_replicas == null || var.redis_tier == "STANDARD_HA" || var.redis_wait_replicas == 0
    error_message = "redis_wait_replicas must be 0 (or null) with redis_tier BASIC, which has no replica to wait for: got ${jsonencode(var.redis_wait_replicas)}."
  }
  validation {
    condition     = var.redis_wait_replicas == null || var.redis_engine == "redis" || var.redis_replica_count > 0 || var.redis_wait_replicas == 0
    error_message = "redis_wait_replicas must be 0 (or null) with a cluster engine without replicas (redis_replica_count 0), which has none to wait for: got ${jsonencode(var.redis_wait_replicas)}."
  }
}

variable "redis_wait_timeout" {
  description = "REDIS_WAIT_TIMEOUT: how long a change waits for the replica before it is answered 503 and retried. Less than redis_timeout."
  type        = string
  default     = "500ms"

  validation {
    condition     = can(regex("^([0-9]+(\\.[0-9]+)?(ns|us|ms|s|m|h))+$", var.redis_wait_timeout))
    error_message = "redis_wait_timeout must be a Go duration such as 500ms: got \"${var.redis_wait_timeout}\"."
  }
}

variable "redis_watch_interval" {
  description = "REDIS_WATCH_INTERVAL: how often the function checks Redis for a restart, a failover or lost writes; \"0\" turns the check (and the repair) off. With a cluster engine the check does not run (not supported there yet)."
  type        = string
  default     = "5s"

  validation {
    condition     = var.redis_watch_interval == "0" || can(regex("^([0-9]+(\\.[0-9]+)?(ns|us|ms|s|m|h))+$", var.redis_watch_interval))
    error_message = "redis_watch_interval must be a Go duration such as 5s, or \"0\": got \"${var.redis_watch_interval}\"."
  }
}

variable "repair_by_seek" {
  description = "Repair a loss the function notices by seeking every push subscription back past it (REPAIR_SUBSCRIPTIONS): the table and schema-change topics retain every message for topic_message_retention_duration (by default sized to the losses a seek must cover), and the function may seek the subscriptions. false: losses are detected and alerted on only, and the topics keep no messages unless topic_message_retention_duration says so."
  type        = bool
  default     = true
}

variable "repair_seek_margin" {
  description = "REPAIR_SEEK_MARGIN: how much earlier than the loss the subscriptions are sought to; the longest a change can wait in Pub/Sub (retries, up to retry_maximum_backoff per attempt) before it is applied."
  type        = string
  default     = "10m"

  validation {
    condition     = can(regex("^([0-9]+(\\.[0-9]+)?(ns|us|ms|s|m|h))+$", var.repair_seek_margin))
    error_message = "repair_seek_margin must be a Go duration such as 10m: got \"${var.repair_seek_margin}\"."
  }
}

variable "redis_persistence_mode" {
  description = "Memorystore persistence: RDB (default) snapshots the data every redis_rdb_snapshot_period, so a restart of a node (both nodes of the standard tier at once, or the basic tier's one) comes back with the last snapshot rather than empty; DISABLED comes back empty. Either loss is noticed and repaired by the function (redis_watch_interval, repair_by_seek)."
  type        = string
  default     = "RDB"

  validation {
    condition     = contains(["RDB", "DISABLED"], var.redis_persistence_mode)
    error_message = "redis_persistence_mode must be RDB or DISABLED (Memorystore for Redis has no append-only file): got \"${var.redis_persistence_mode}\"."
  }
}

variable "redis_rdb_snapshot_period" {
  description = "How often Memorystore snapshots the data with redis_persistence_mode RDB: ONE_HOUR, SIX_HOURS, TWELVE_HOURS or TWENTY_FOUR_HOURS. A restore from a snapshot loses at most this much, which the repair replays: with repair_by_seek, topic_message_retention_duration must cover it (and is sized to by default)."
  type        = string
  default     = "ONE_HOUR"

  validation {
    condition     = contains(["ONE_HOUR", "SIX_HOURS", "TWELVE_HOURS", "TWENTY_FOUR_HOURS"], var.redis_rdb_snapshot_period)
    error_message = "redis_rdb_snapshot_period must be ONE_HOUR, SIX_HOURS, TWELVE_HOURS or TWENTY_FOUR_HOURS: got \"${var.redis_rdb_snapshot_period}\"."
  }
}

variable "max_body_bytes" {
  description = "MAX_BODY_BYTES of one push request; 0 keeps the function's default."
  type        = number
  default     = 0

  validation {
    condition     = var.max_body_bytes >= 0 && floor(var.max_body_bytes) == var.max_body_bytes
    error_message = "max_body_bytes must be a non-negative whole number of bytes (0: the function's default): got ${var.max_body_bytes}."
  }
}

# ---------------------------------------------------------------------------------------------------
# Images (built and pushed by cloudbuild.yaml)
# ---------------------------------------------------------------------------------------------------

variable "function_image" {
  description = "Image of the apply function, e.g. <region>-docker.pkg.dev/<project>/cloudsql-cache/function:<build id>. Later revisions are deployed by Cloud Build; Terraform ignores image changes after creation."
  type        = string

  validation {
    condition     = can(regex("^[^\\s:@]+(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}|@sha256:[0-9a-f]{64})$", var.function_image))
    error_message = "function_image must be an image reference with a tag or digest, such as europe-west1-docker.pkg.dev/my-project/cloudsql-cache/function:<build id>: got \"${var.function_image}\"."
  }
}

variable "debezium_image" {
  description = "Image of Debezium Server built from debezium-server/, e.g. <region>-docker.pkg.dev/<project>/cloudsql-cache/debezium-server:<build id>."
  type        = string

  validation {
    condition     = can(regex("^[^\\s:@]+(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}|@sha256:[0-9a-f]{64})$", var.debezium_image))
    error_message = "debezium_image must be an image reference with a tag or digest, such as europe-west1-docker.pkg.dev/my-project/cloudsql-cache/debezium-server:<build id>: got \"${var.debezium_image}\"."
  }
}

# ---------------------------------------------------------------------------------------------------
# Apply function (Cloud Run service)
# ---------------------------------------------------------------------------------------------------

variable "function_min_instances" {
  description = "Minimum instances of the function. 1 keeps the metrics exporter running and avoids cold starts on the first change after a quiet period."
  type        = number
  default     = 1

  validation {
    condition     = var.function_min_instances >= 0 && floor(var.function_min_instances) == var.function_min_instances
    error_message = "function_min_instances must be a non-negative whole number: got ${var.function_min_instances}."
  }
}

variable "function_max_instances" {
  description = "Maximum instances of the function. Redis connections = instances x pool size; keep it under Memorystore's client limit."
  type        = number
  default     = 20

  validation {
    condition     = var.function_max_instances >= 1 && floor(var.function_max_instances) == var.function_max_instances && var.function_max_instances >= var.function_min_instances
    error_message = "function_max_instances must be a whole number, at least 1 and at least function_min_instances (${var.function_min_instances}): got ${var.function_max_instances}."
  }
}

variable "function_concurrency" {
  description = "Concurrent push requests per instance."
  type        = number
  default     = 80

  validation {
    condition     = var.function_concurrency >= 1 && var.function_concurrency <= 1000 && floor(var.function_concurrency) == var.function_concurrency
    error_message = "function_concurrency must be a whole number from 1 to 1000 (Cloud Run's limit per instance): got ${var.function_concurrency}."
  }
}

variable "function_cpu" {
  description = "vCPUs per function instance (1, 2, 4, 6 or 8)."
  type        = string
  default     = "1"

  validation {
    condition     = contains(["1", "2", "4", "6", "8"], var.function_cpu)
    error_message = "function_cpu must be \"1\", \"2\", \"4\", \"6\" or \"8\" (whole vCPUs: CPU is always allocated): got \"${var.function_cpu}\"."
  }
}

variable "function_memory" {
  description = "Memory per function instance."
  type        = string
  default     = "512Mi"

  validation {
    condition     = can(regex("^[0-9]+(Mi|Gi)$", var.function_memory))
    error_message = "function_memory must be a Cloud Run memory limit such as 512Mi or 2Gi: got \"${var.function_memory}\"."
  }
}

# ---------------------------------------------------------------------------------------------------
# Debezium Server (Cloud Run worker pool)
# ---------------------------------------------------------------------------------------------------

variable "topic_prefix" {
  description = "Debezium topic.prefix: table topics are <topic_prefix>.<db>.<table>, schema changes go to the topic <topic_prefix>. Must start with a letter (Pub/Sub topic IDs). Changing it makes Debezium lose its offsets and re-snapshot."
  type        = string
  default     = "cloudsql-cache"

  validation {
    condition     = can(regex("^[A-Za-z][A-Za-z0-9_-]{2,99}$", var.topic_prefix)) && !startswith(lower(var.topic_prefix), "goog")
    error_message = "topic_prefix must be 3-100 letters, digits, '-' or '_', start with a letter and not with 'goog': got \"${var.topic_prefix}\"."
  }
}

variable "debezium_server_id" {
  description = "MySQL server_id Debezium uses as a replica: unique among every replica and binlog client of the source. MySQL disconnects an older client that reuses it, which also stops a second Debezium from streaming."
  type        = number
  default     = 184054

  validation {
    condition     = var.debezium_server_id >= 1 && var.debezium_server_id <= 4294967295 && floor(var.debezium_server_id) == var.debezium_server_id
    error_message = "debezium_server_id must be a whole number in 1..4294967295: got ${var.debezium_server_id}."
  }
}

variable "debezium_db_user" {
  description = "MySQL user Debezium connects as (created by this module)."
  type        = string
  default     = "debezium"

  validation {
    condition     = can(regex("^[A-Za-z0-9_]{1,32}$", var.debezium_db_user))
    error_message = "debezium_db_user must be a MySQL user name of 1-32 letters, digits or underscores: got \"${var.debezium_db_user}\"."
  }
}

variable "debezium_state_database" {
  description = "Database on the source instance that holds Debezium's offsets and schema history (created by this module; never captured)."
  type        = string
  default     = "debezium_state"

  validation {
    condition     = can(regex("^[A-Za-z0-9_]{1,64}$", var.debezium_state_database)) && !contains([for t in var.tables : split(".", t)[0]], var.debezium_state_database)
    error_message = "debezium_state_database must be a database name of 1-64 letters, digits or underscores that holds no captured table (Debezium writes its offsets there): got \"${var.debezium_state_database}\"."
  }
}

variable "debezium_password_version" {
  description = "Increment to generate and store a new password for the Debezium MySQL user (write-only: it never enters the Terraform state)."
  type        = number
  default     = 1

  validation {
    condition     = var.debezium_password_version >= 1 && floor(var.debezium_password_version) == var.debezium_password_version
    error_message = "debezium_password_version must be a whole number, at least 1; increment it to rotate the password: got ${var.debezium_password_version}."
  }
}

variable "snapshot_mode" {
  description = "Debezium snapshot.mode. when_needed snapshots on first start and again whenever the stored binlog position was purged."
  type        = string
  default     = "when_needed"

  validation {
    condition     = contains(["when_needed", "initial", "no_data", "recovery"], var.snapshot_mode)
    error_message = "snapshot_mode must be when_needed (recommended), initial, no_data or recovery: got \"${var.snapshot_mode}\"."
  }
}

variable "event_format" {
  description = "How Debezium publishes a row change (EVENT_FORMAT of debezium-server/entrypoint.sh): compact, the row and the metadata the function needs (about 0.5-0.8x the bytes; README \"Event format\"), or full, Debezium's envelope with before, after and source. The function reads both, message by message, so switching needs no other change."
  type        = string
  default     = "compact"

  validation {
    condition     = contains(["compact", "full"], var.event_format)
    error_message = "event_format must be compact or full: got \"${var.event_format}\"."
  }
}

variable "snapshot_locking_mode" {
  description = "Debezium snapshot.locking.mode. Cloud SQL forbids the global read lock, so minimal/extended fall back to table locks held for the whole snapshot; none takes no lock and is safe while no DDL runs on the captured tables during a snapshot."
  type        = string
  default     = "none"

  validation {
    condition     = contains(["none", "minimal", "extended"], var.snapshot_locking_mode)
    error_message = "snapshot_locking_mode must be none, minimal or extended: got \"${var.snapshot_locking_mode}\"."
  }
}

variable "heartbeat_interval_ms" {
  description = "Debezium heartbeat.interval.ms: keeps the stored binlog position moving while the captured tables are quiet, and feeds the 'Debezium down' alert."
  type        = number
  default     = 10000

  validation {
    condition     = var.heartbeat_interval_ms >= 1000 && var.heartbeat_interval_ms <= 60000 && floor(var.heartbeat_interval_ms) == var.heartbeat_interval_ms
    error_message = "heartbeat_interval_ms must be a whole number from 1000 to 60000 (the 'Debezium down' alert fires after 5 minutes without one): got ${var.heartbeat_interval_ms}."
  }
}

variable "debezium_instances" {
  description = "Instances of the Debezium worker pool: 1 streams, 0 stops Debezium (terraform apply -var debezium_instances=0; the restore runbook, terraform/scripts/restore, does it for you). Never more than 1: one binlog reader per source."
  type        = number
  default     = 1

  validation {
    condition     = contains([0, 1], var.debezium_instances)
    error_message = "debezium_instances must be 1 (streaming) or 0 (stopped): two instances would read the same binlog with the same server_id. Got ${var.debezium_instances}."
  }
}

variable "debezium_cpu" {
  description = "vCPUs of the Debezium worker pool instance."
  type        = string
  default     = "1"

  validation {
    condition     = contains(["1", "2", "4", "6", "8"], var.debezium_cpu)
    error_message = "debezium_cpu must be \"1\", \"2\", \"4\", \"6\" or \"8\": got \"${var.debezium_cpu}\"."
  }
}

variable "debezium_memory" {
  description = "Memory of the Debezium worker pool instance."
  type        = string
  default     = "2Gi"

  validation {
    condition     = can(regex("^[0-9]+(Mi|Gi)$", var.debezium_memory))
    error_message = "debezium_memory must be a Cloud Run memory limit such as 2Gi or 4096Mi: got \"${var.debezium_memory}\"."
  }
}

# ---------------------------------------------------------------------------------------------------
# Memorystore: the engine, then each engine's own sizing
# ---------------------------------------------------------------------------------------------------

variable "redis_engine" {
  description = "The cache's Redis: redis (Memorystore for Redis, one primary of up to 300 GB: redis_tier, redis_memory_size_gb, redis_version), redis_cluster (Memorystore for Redis Cluster) or valkey (Memorystore for Valkey in cluster mode), both sharded over redis_shard_count primaries, reached through Private Service Connect, IAM authentication and TLS. The function, cachectl and verify get REDIS_MODE=cluster and REDIS_IAM_AUTH=true for the cluster engines (README.md: Choosing a cluster)."
  type        = string
  default     = "redis"

  validation {
    condition     = contains(["redis", "redis_cluster", "valkey"], var.redis_engine)
    error_message = "redis_engine must be redis (Memorystore for Redis), redis_cluster (Memorystore for Redis Cluster) or valkey (Memorystore for Valkey, cluster mode): got \"${var.redis_engine}\"."
  }
}

variable "redis_tier" {
  description = "redis engine: STANDARD_HA (replica in another zone, automatic failover) or BASIC."
  type        = string
  default     = "STANDARD_HA"

  validation {
    condition     = contains(["STANDARD_HA", "BASIC"], var.redis_tier)
    error_message = "redis_tier must be STANDARD_HA or BASIC: got \"${var.redis_tier}\"."
  }
}

variable "redis_memory_size_gb" {
  description = "redis engine: Memorystore capacity in GiB. Size it for every cached row plus tombstones (`make memory` measures bytes per row)."
  type        = number
  default     = 5

  validation {
    condition     = var.redis_memory_size_gb >= 1 && var.redis_memory_size_gb <= 300 && floor(var.redis_memory_size_gb) == var.redis_memory_size_gb
    error_message = "redis_memory_size_gb must be a whole number of GiB from 1 to 300 (Memorystore for Redis): got ${var.redis_memory_size_gb}."
  }
}

variable "redis_version" {
  description = "redis engine: Memorystore Redis version."
  type        = string
  default     = "REDIS_7_2"

  validation {
    condition     = can(regex("^REDIS_(6_X|7_0|7_2)$", var.redis_version))
    error_message = "redis_version must be REDIS_7_2, REDIS_7_0 or REDIS_6_X (the function's script needs Redis 6 or later): got \"${var.redis_version}\"."
  }
}

variable "redis_shard_count" {
  description = "redis_cluster and valkey engines: shards (primaries), each holding a share of the 16,384 slots. Capacity is shards × the node type's memory; a shard is also a primary's throughput."
  type        = number
  default     = 3

  validation {
    condition     = var.redis_shard_count >= 1 && var.redis_shard_count <= 250 && floor(var.redis_shard_count) == var.redis_shard_count
    error_message = "redis_shard_count must be a whole number from 1 to 250 (Memorystore's limit for a cluster): got ${var.redis_shard_count}."
  }

  validation {
    condition     = var.redis_shard_count * (1 + var.redis_replica_count) <= 250
    error_message = "redis_shard_count × (1 + redis_replica_count) is ${var.redis_shard_count * (1 + var.redis_replica_count)} nodes; a Memorystore cluster has at most 250: fewer shards or replicas."
  }
}

variable "redis_replica_count" {
  description = "redis_cluster and valkey engines: replicas of each shard, in other zones. 1 or 2 for automatic failover (Memorystore's SLA needs at least 1); 0 loses a shard's keys with its node."
  type        = number
  default     = 1

  validation {
    condition     = contains([0, 1, 2], var.redis_replica_count)
    error_message = "redis_replica_count must be 0, 1 or 2 (Memorystore's limits for a cluster): got ${var.redis_replica_count}."
  }
}

variable "redis_node_type" {
  description = "redis_cluster and valkey engines: the node type, named as Memorystore for Valkey names it (Redis Cluster's are the same with REDIS_ in front): SHARED_CORE_NANO, STANDARD_SMALL, HIGHCPU_MEDIUM, HIGHMEM_MEDIUM (13 GB, the default), STANDARD_LARGE, HIGHMEM_XLARGE, HIGHMEM_2XLARGE, and for valkey CUSTOM_PICO, CUSTOM_MICRO, CUSTOM_MINI."
  type        = string
  default     = "HIGHMEM_MEDIUM"

  validation {
    condition     = contains(["SHARED_CORE_NANO", "STANDARD_SMALL", "HIGHCPU_MEDIUM", "HIGHMEM_MEDIUM", "STANDARD_LARGE", "HIGHMEM_XLARGE", "HIGHMEM_2XLARGE"], var.redis_node_type) || (var.redis_engine != "redis_cluster" && contains(["CUSTOM_PICO", "CUSTOM_MICRO", "CUSTOM_MINI"], var.redis_node_type))
    error_message = "redis_node_type must be SHARED_CORE_NANO, STANDARD_SMALL, HIGHCPU_MEDIUM, HIGHMEM_MEDIUM, STANDARD_LARGE, HIGHMEM_XLARGE or HIGHMEM_2XLARGE (without REDIS_ in front), or for valkey CUSTOM_PICO, CUSTOM_MICRO or CUSTOM_MINI: got \"${var.redis_node_type}\" for redis_engine ${var.redis_engine}."
  }
}

variable "valkey_version" {
  description = "valkey engine: the Valkey version (engine_version), 7.2 or later (the cache needs Redis 7's sharded pub/sub)."
  type        = string
  default     = "VALKEY_8_0"

  validation {
    condition     = can(regex("^VALKEY_[0-9]+_[0-9]+$", var.valkey_version)) && try(tonumber(split("_", var.valkey_version)[1]) * 100 + tonumber(split("_", var.valkey_version)[2]) >= 702, false)
    error_message = "valkey_version must be VALKEY_<major>_<minor>, 7.2 or later, such as VALKEY_8_0: got \"${var.valkey_version}\"."
  }
}

variable "psc_subnet_name" {
  description = "redis_cluster and valkey engines: the subnet in region that the cluster's Private Service Connect endpoints take their addresses from (created with create_network; else it must exist on network_name)."
  type        = string
  default     = "cloudsql-cache-psc"

  validation {
    condition     = can(regex("^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$", var.psc_subnet_name)) && var.psc_subnet_name != var.subnet_name
    error_message = "psc_subnet_name must be a subnet name (1-63 lowercase letters, digits or dashes, starting with a letter) other than subnet_name: got \"${var.psc_subnet_name}\"."
  }
}

variable "psc_subnet_cidr" {
  description = "redis_cluster and valkey engines: CIDR of the created PSC subnet (create_network). A cluster takes two addresses from it; in RFC 1918 space, so the function's PRIVATE_RANGES_ONLY egress routes them into the VPC."
  type        = string
  default     = "10.10.1.0/28"

  validation {
    condition = try(
      cidrsubnet(var.psc_subnet_cidr, 0, 0) == var.psc_subnet_cidr &&
      tonumber(split("/", var.psc_subnet_cidr)[1]) >= 16 && tonumber(split("/", var.psc_subnet_cidr)[1]) <= 29 &&
      (cidrsubnet("${split("/", var.psc_subnet_cidr)[0]}/8", 0, 0) == "10.0.0.0/8" ||
        cidrsubnet("${split("/", var.psc_subnet_cidr)[0]}/12", 0, 0) == "172.16.0.0/12" ||
      cidrsubnet("${split("/", var.psc_subnet_cidr)[0]}/16", 0, 0) == "192.168.0.0/16"),
      false
    )
    error_message = "psc_subnet_cidr must be an IPv4 network of /16 to /29 in 10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16 (PRIVATE_RANGES_ONLY egress routes only those into the VPC), written as its first address: got \"${var.psc_subnet_cidr}\"."
  }
}

variable "create_service_connection_policy" {
  description = "redis_cluster and valkey engines: create the service connection policy that lets Memorystore create the PSC endpoints in psc_subnet_name. false if the network already has one for the engine's service class (gcp-memorystore-redis, gcp-memorystore) in region: a network holds one per region and class."
  type        = bool
  default     = true
}

variable "redis_maxmemory_policy" {
  description = "maxmemory-policy. noeviction (default): a full cache rejects writes, the function answers 503, Pub/Sub keeps the changes and the memory alert fires; evicting rows or tombstones would instead silently drop the version guard of those keys."
  type        = string
  default     = "noeviction"

  validation {
    condition     = contains(["noeviction", "allkeys-lru", "allkeys-lfu", "volatile-lru", "volatile-lfu", "volatile-ttl", "allkeys-random", "volatile-random"], var.redis_maxmemory_policy)
    error_message = "redis_maxmemory_policy must be a Redis maxmemory-policy (noeviction is the one that keeps the version guard): got \"${var.redis_maxmemory_policy}\"."
  }
}

# ---------------------------------------------------------------------------------------------------
# Pub/Sub delivery
# ---------------------------------------------------------------------------------------------------

variable "ack_deadline_seconds" {
  description = "Push request timeout (and ack deadline) of the subscriptions."
  type        = number
  default     = 60

  validation {
    condition     = var.ack_deadline_seconds >= 10 && var.ack_deadline_seconds <= 600 && floor(var.ack_deadline_seconds) == var.ack_deadline_seconds
    error_message = "ack_deadline_seconds must be a whole number from 10 to 600 (Pub/Sub's limits): got ${var.ack_deadline_seconds}."
  }
}

variable "max_delivery_attempts" {
  description = "Deliveries of one message before the subscription's dead-letter policy forwards it (5-100). Messages the function finds permanently bad are dead-lettered by the function on the first attempt; this backstop catches messages that keep failing with 5xx."
  type        = number
  default     = 50

  validation {
    condition     = var.max_delivery_attempts >= 5 && var.max_delivery_attempts <= 100 && floor(var.max_delivery_attempts) == var.max_delivery_attempts
    error_message = "max_delivery_attempts must be a whole number from 5 to 100 (Pub/Sub's limits for a dead-letter policy): got ${var.max_delivery_attempts}."
  }
}

variable "retry_minimum_backoff" {
  description = "Minimum delay between redeliveries of a failed message."
  type        = string
  default     = "5s"

  validation {
    condition     = can(regex("^[0-9]+(\\.[0-9]{1,9})?s$", var.retry_minimum_backoff)) && try(tonumber(trimsuffix(var.retry_minimum_backoff, "s")) <= 600, false)
    error_message = "retry_minimum_backoff must be seconds with an \"s\" suffix, 0s to 600s, such as 5s: got \"${var.retry_minimum_backoff}\"."
  }
}

variable "retry_maximum_backoff" {
  description = "Maximum delay between redeliveries of a failed message."
  type        = string
  default     = "300s"

  validation {
    condition     = can(regex("^[0-9]+(\\.[0-9]{1,9})?s$", var.retry_maximum_backoff)) && try(tonumber(trimsuffix(var.retry_maximum_backoff, "s")) <= 600 && tonumber(trimsuffix(var.retry_maximum_backoff, "s")) >= tonumber(trimsuffix(var.retry_minimum_backoff, "s")), false)
    error_message = "retry_maximum_backoff must be seconds with an \"s\" suffix, at most 600s and at least retry_minimum_backoff (${var.retry_minimum_backoff}): got \"${var.retry_maximum_backoff}\"."
  }
}

variable "message_retention_duration" {
  description = "How long the subscriptions keep messages not yet acknowledged (the backlog a function outage builds; Pub/Sub bills storage only for unacknowledged messages older than 24 hours), and the dead-letter topic and subscription keep dead letters. It is not the repair's window: the push subscriptions do not retain acknowledged messages (topic_message_retention_duration does that once per topic)."
  type        = string
  default     = "604800s"

  validation {
    condition     = can(regex("^[0-9]+s$", var.message_retention_duration)) && try(tonumber(trimsuffix(var.message_retention_duration, "s")) >= 600 && tonumber(trimsuffix(var.message_retention_duration, "s")) <= 604800, false)
    error_message = "message_retention_duration must be whole seconds with an \"s\" suffix from 600s (10 minutes) to 604800s (7 days, a subscription's maximum): got \"${var.message_retention_duration}\"."
  }
}

variable "topic_message_retention_duration" {
  description = "How long the table and schema-change topics keep every published message, acknowledged or not, so that a subscription can be sought back to a time (the repair after a Redis loss, repair_by_seek; gcloud pubsub subscriptions seek) or a new one replay it. null: with repair_by_seek, the shortest retention the repair needs (the RDB snapshot period with redis_persistence_mode RDB, plus repair_seek_margin, redis_watch_interval and an hour for Memorystore to bring the node back) plus a day for an operator to fix a repair that fails (output topic_message_retention_duration); without, none. A value shorter than the repair needs is refused. Losses older than it need a re-snapshot through Debezium (README: Redis failover, restart and data loss). Pub/Sub bills it as storage once per topic: at 100M changes/hour in the compact format, the default (about 26 hours) costs about $833 a month, 7 days $5,350 (make cost). 600s-2678400s (31 days)."
  type        = string
  default     = null

  validation {
    condition     = var.topic_message_retention_duration == null || (can(regex("^[0-9]+s$", var.topic_message_retention_duration)) && try(tonumber(trimsuffix(var.topic_message_retention_duration, "s")) >= 600 && tonumber(trimsuffix(var.topic_message_retention_duration, "s")) <= 2678400, false))
    error_message = "topic_message_retention_duration must be null (sized for repair_by_seek, or none without it) or whole seconds with an \"s\" suffix from 600s (10 minutes) to 2678400s (31 days, a topic's maximum): got \"${coalesce(var.topic_message_retention_duration, "null")}\"."
  }

  # The repair seeks back to the surviving heartbeat less the margin; Pub/Sub replays only what the topics
  # still hold, so a shorter retention would repair part of a loss (the function reports it, but the
  # rows in between stay stale until a re-snapshot).
  validation {
    condition     = !local.repair_by_seek || var.topic_message_retention_duration == null || try(tonumber(trimsuffix(var.topic_message_retention_duration, "s")) >= local.repair_retention_needed, true)
    error_message = "topic_message_retention_duration ${coalesce(var.topic_message_retention_duration, "null")} is shorter than the repair after a Redis loss needs with repair_by_seek (${local.repair_retention_needed}s: the ${var.redis_persistence_mode == "RDB" ? "redis_rdb_snapshot_period ${var.redis_rdb_snapshot_period}" : "no snapshot period (redis_persistence_mode DISABLED)"}, repair_seek_margin ${var.repair_seek_margin}, redis_watch_interval ${var.redis_watch_interval} and an hour for Memorystore to recover): set it to at least \"${local.repair_retention_needed}s\", or null to have it sized, or set repair_by_seek = false."
  }

  # Sized (null), the retention the repair needs must fit in Pub/Sub's 31 days, or the default would
  # silently cover less than the repair seeks back to (a very long repair_seek_margin).
  validation {
    condition     = var.topic_message_retention_duration != null || !local.repair_by_seek || try(local.repair_retention_needed <= 2678400, true)
    error_message = "topic_message_retention_duration null (${jsonencode(var.topic_message_retention_duration)}) sizes the topics for the repair after a Redis loss, and with repair_by_seek that needs ${try(local.repair_retention_needed, "?")}s of topic retention (redis_rdb_snapshot_period, repair_seek_margin ${var.repair_seek_margin}, redis_watch_interval ${var.redis_watch_interval} and an hour), more than Pub/Sub's 2678400s (31 days): shorten repair_seek_margin, or set repair_by_seek = false."
  }
}

variable "enable_message_ordering" {
  description = "Deliver each row's changes in commit order, one at a time (the push subscriptions' enable_message_ordering). Off, the function's version guard still stores the newest change of every row, but older ones arriving later count as stale, and a row has no ceiling of one change per push round trip. Changing it replaces the subscriptions (see the README's Deployment section)."
  type        = bool
  default     = true
  nullable    = false
}

variable "grant_pubsub_token_creator" {
  description = "Grant the Pub/Sub service agent roles/iam.serviceAccountTokenCreator on the push identity. Only projects created before 8 April 2021 need it for authenticated push."
  type        = bool
  default     = false
}

# ---------------------------------------------------------------------------------------------------
# Monitoring
# ---------------------------------------------------------------------------------------------------

variable "stale_alert_per_second" {
  description = "Alert when changes refused as stale exceed this rate for 10 minutes. A few are normal (redeliveries, replays, a repair's seek); a sustained rise means changes arrive older than what is cached, which is how binlog coordinates that went backwards (a restored or replaced database without a new version_epoch) show."
  type        = number
  default     = 5

  validation {
    condition     = var.stale_alert_per_second >= 0
    error_message = "stale_alert_per_second must be 0 or more: got ${var.stale_alert_per_second}."
  }
}

variable "notification_emails" {
  description = "E-mail addresses the alert policies notify."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for e in var.notification_emails : can(regex("^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$", e))])
    error_message = "notification_emails must be e-mail addresses: got ${jsonencode(var.notification_emails)}."
  }
}

variable "backlog_age_alert_seconds" {
  description = "Alert when the oldest unacknowledged change of a subscription is older than this."
  type        = number
  default     = 300

  validation {
    condition     = var.backlog_age_alert_seconds > 0
    error_message = "backlog_age_alert_seconds must be positive: got ${var.backlog_age_alert_seconds}."
  }
}

variable "replication_lag_alert_ms" {
  description = "Alert when the p99 of cloudsql_cache.replication_lag (commit to cache write) exceeds this."
  type        = number
  default     = 60000

  validation {
    condition     = var.replication_lag_alert_ms > 0
    error_message = "replication_lag_alert_ms must be positive: got ${var.replication_lag_alert_ms}."
  }
}

variable "apply_error_alert_per_second" {
  description = "Alert when the function answers more than this many 5xx per second (apply errors that Pub/Sub retries)."
  type        = number
  default     = 1

  validation {
    condition     = var.apply_error_alert_per_second >= 0
    error_message = "apply_error_alert_per_second must not be negative: got ${var.apply_error_alert_per_second}."
  }
}

# ---------------------------------------------------------------------------------------------------
# Operations: the tools image, the admin database user, the way into the VPC
# ---------------------------------------------------------------------------------------------------

variable "tools_image" {
  description = "Image of the operator tools (cachectl, verify) built from tools/Dockerfile, e.g. <region>-docker.pkg.dev/<project>/cloudsql-cache/tools:<build id>. Runs the job that narrows Debezium's grants and, with operator_access, the operator's job. Required unless both are off."
  type        = string
  default     = ""

  validation {
    condition     = (!var.narrow_debezium_grants && !var.operator_access) || can(regex("^[^\\s:@]+(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}|@sha256:[0-9a-f]{64})$", var.tools_image))
    error_message = "tools_image must be an image reference with a tag or digest, such as europe-west1-docker.pkg.dev/my-project/cloudsql-cache/tools:<build id> (cloudbuild.yaml builds it), while narrow_debezium_grants or operator_access is on: got \"${var.tools_image}\"."
  }
}

variable "narrow_debezium_grants" {
  description = "Run a Cloud Run job (the tools image, as the admin database user) on every apply that changes what Debezium needs, which revokes cloudsqlsuperuser from the Debezium user and grants only what the connector and its state stores need, and creates Debezium's signal table (cachectl snapshot). Debezium starts after it. false: do it by hand (debezium-server/README.md)."
  type        = bool
  default     = true
}

variable "admin_db_user" {
  description = "MySQL administrator the tools connect as (created by this module; Cloud SQL gives it cloudsqlsuperuser). Its password is generated and kept in Secret Manager only."
  type        = string
  default     = "cloudsql_cache_admin"

  validation {
    condition     = can(regex("^[A-Za-z0-9_]{1,32}$", var.admin_db_user)) && var.admin_db_user != var.debezium_db_user
    error_message = "admin_db_user must be a MySQL user name of 1-32 letters, digits or underscores, other than debezium_db_user: got \"${var.admin_db_user}\"."
  }
}

variable "admin_password_version" {
  description = "Increment to generate and store a new password for the admin MySQL user (write-only: it never enters the Terraform state)."
  type        = number
  default     = 1

  validation {
    condition     = var.admin_password_version >= 1 && floor(var.admin_password_version) == var.admin_password_version
    error_message = "admin_password_version must be a whole number, at least 1; increment it to rotate the password: got ${var.admin_password_version}."
  }
}

variable "operator_access" {
  description = "The way into the VPC: a Cloud Run job running the tools image (cachectl, verify) with Direct VPC egress on the module's subnet, Redis's and the admin user's credentials from Secret Manager. Off by default; turn it on for an operation, off after. Run it with gcloud run jobs execute (README: Operations)."
  type        = bool
  default     = false
}

variable "operators" {
  description = "Principals that may run the operator job with their own arguments (roles/run.jobsExecutorWithOverrides on the job only), e.g. [\"group:oncall@example.com\"]. Only with operator_access."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for m in var.operators : can(regex("^(user|group|serviceAccount):[^@\\s]+@[^@\\s]+$", m))])
    error_message = "operators must be IAM principals of one person, group or service account (user:, group: or serviceAccount: and an e-mail address), never allUsers or a domain: got ${jsonencode(var.operators)}."
  }
}

variable "tools_timeout" {
  description = "Longest run of one execution of the operator job (verify of a large table takes hours at a gentle -rate)."
  type        = string
  default     = "86400s"

  validation {
    condition     = can(regex("^[0-9]+s$", var.tools_timeout)) && try(tonumber(trimsuffix(var.tools_timeout, "s")) >= 60 && tonumber(trimsuffix(var.tools_timeout, "s")) <= 604800, false)
    error_message = "tools_timeout must be whole seconds with an \"s\" suffix from 60s to 604800s (7 days, Cloud Run's limit for a job task): got \"${var.tools_timeout}\"."
  }
}
