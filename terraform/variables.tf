# ---------------------------------------------------------------------------------------------------
# Project
# ---------------------------------------------------------------------------------------------------

variable "project_id" {
  description = "Google Cloud project that holds the whole stack."
  type        = string
}

variable "region" {
  description = "Region of every regional resource (Cloud Run, Cloud SQL, Memorystore, Artifact Registry, the subnet)."
  type        = string
  default     = "europe-west1"
}

variable "name_prefix" {
  description = "Prefix of every resource name. Lowercase letters, digits and dashes, starting with a letter."
  type        = string
  default     = "cloudsql-cache"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{2,19}$", var.name_prefix))
    error_message = "name_prefix must be 3-20 lowercase letters, digits or dashes and start with a letter (service account IDs derive from it)."
  }
}

variable "deletion_protection" {
  description = "Protect the Cloud Run services, the worker pool and the Redis instance from `terraform destroy`. Set to false (and apply) before tearing down."
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
}

variable "subnet_name" {
  description = "Subnet Cloud Run Direct VPC egress takes its addresses from (created, or existing when create_network = false)."
  type        = string
  default     = "cloudsql-cache-run"
}

variable "subnet_cidr" {
  description = "CIDR of the created subnet. Direct VPC egress uses up to 2 addresses per instance: size it for twice function_max_instances plus Debezium, /26 at least."
  type        = string
  default     = "10.10.0.0/24"
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
}

variable "private_service_range_prefix_length" {
  description = "Prefix length of the private services access range."
  type        = number
  default     = 16
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
}

variable "cloudsql_database_version" {
  description = "MySQL version of a created instance."
  type        = string
  default     = "MYSQL_8_4"

  validation {
    condition     = startswith(var.cloudsql_database_version, "MYSQL_8")
    error_message = "Only MySQL 8.x is supported (Debezium 3.x MySQL connector, GTIDs, binlog_row_image)."
  }
}

variable "cloudsql_tier" {
  description = "Machine type of a created instance."
  type        = string
  default     = "db-custom-2-8192"
}

variable "cloudsql_edition" {
  description = "Edition of a created instance: ENTERPRISE or ENTERPRISE_PLUS (the latter needs a db-perf-optimized-N-* tier)."
  type        = string
  default     = "ENTERPRISE"
}

variable "cloudsql_availability_type" {
  description = "REGIONAL (HA, failover keeps GTIDs so Debezium resumes) or ZONAL."
  type        = string
  default     = "REGIONAL"
}

variable "binlog_retention_days" {
  description = "Days of transaction logs (binlogs) Cloud SQL keeps, 1-7. Debezium can resume after an outage shorter than this; longer ones trigger a re-snapshot (snapshot.mode=when_needed)."
  type        = number
  default     = 7

  validation {
    condition     = var.binlog_retention_days >= 1 && var.binlog_retention_days <= 7
    error_message = "Cloud SQL for MySQL keeps 1 to 7 days of transaction logs."
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
    error_message = "tables must be a non-empty list of db.table names made of letters, digits and underscores (they become Pub/Sub topic names)."
  }
}

variable "exclude_columns" {
  description = "Columns never captured nor cached, as db.table.column (Debezium column.exclude.list and the function's CACHE_EXCLUDE_COLUMNS)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for c in var.exclude_columns : can(regex("^[A-Za-z0-9_]+\\.[A-Za-z0-9_]+\\.[A-Za-z0-9_]+$", c))])
    error_message = "exclude_columns entries must be db.table.column."
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
    condition     = alltrue([for k, v in var.key_templates : !strcontains(k, ",") && !strcontains(v, ",") && !strcontains(k, "=")])
    error_message = "key_templates keys and templates must not contain commas (the variable is a comma-separated list) and keys must not contain '='."
  }
}

variable "version_columns" {
  description = "CACHE_VERSION_COLUMNS: { \"db.table\" = \"column\" } to order that table's changes by the column first."
  type        = map(string)
  default     = {}
}

variable "version_epoch" {
  description = "CACHE_VERSION_EPOCH. Raise it by one whenever the database is restored from a backup, cloned or replaced: binlog positions start over and would otherwise look older than the cached versions."
  type        = number
  default     = 0

  validation {
    condition     = var.version_epoch >= 0 && floor(var.version_epoch) == var.version_epoch
    error_message = "version_epoch must be a non-negative integer."
  }
}

variable "tombstone_ttl" {
  description = "CACHE_TOMBSTONE_TTL: how long a deleted row's tombstone is kept. Must outlast subscription retention and any replay."
  type        = string
  default     = "168h"
}

variable "apply_timeout" {
  description = "APPLY_TIMEOUT of one delivery. Keep it well under ack_deadline_seconds."
  type        = string
  default     = "10s"
}

variable "redis_timeout" {
  description = "REDIS_TIMEOUT of one Redis command."
  type        = string
  default     = "1s"
}

variable "max_body_bytes" {
  description = "MAX_BODY_BYTES of one push request; 0 keeps the function's default."
  type        = number
  default     = 0
}

# ---------------------------------------------------------------------------------------------------
# Images (built and pushed by cloudbuild.yaml)
# ---------------------------------------------------------------------------------------------------

variable "function_image" {
  description = "Image of the apply function, e.g. <region>-docker.pkg.dev/<project>/cloudsql-cache/function:<build id>. Later revisions are deployed by Cloud Build; Terraform ignores image changes after creation."
  type        = string
}

variable "debezium_image" {
  description = "Image of Debezium Server built from debezium-server/, e.g. <region>-docker.pkg.dev/<project>/cloudsql-cache/debezium-server:<build id>."
  type        = string
}

# ---------------------------------------------------------------------------------------------------
# Apply function (Cloud Run service)
# ---------------------------------------------------------------------------------------------------

variable "function_min_instances" {
  description = "Minimum instances of the function. 1 keeps the metrics exporter running and avoids cold starts on the first change after a quiet period."
  type        = number
  default     = 1
}

variable "function_max_instances" {
  description = "Maximum instances of the function. Redis connections = instances x pool size; keep it under Memorystore's client limit."
  type        = number
  default     = 20
}

variable "function_concurrency" {
  description = "Concurrent push requests per instance."
  type        = number
  default     = 80
}

variable "function_cpu" {
  description = "vCPUs per function instance (1, 2, 4, 6 or 8)."
  type        = string
  default     = "1"
}

variable "function_memory" {
  description = "Memory per function instance."
  type        = string
  default     = "512Mi"
}

# ---------------------------------------------------------------------------------------------------
# Debezium Server (Cloud Run worker pool)
# ---------------------------------------------------------------------------------------------------

variable "topic_prefix" {
  description = "Debezium topic.prefix: table topics are <topic_prefix>.<db>.<table>. Must start with a letter (Pub/Sub topic IDs). Changing it makes Debezium lose its offsets and re-snapshot."
  type        = string
  default     = "cloudsql-cache"

  validation {
    condition     = can(regex("^[A-Za-z][A-Za-z0-9_-]{2,99}$", var.topic_prefix)) && !startswith(lower(var.topic_prefix), "goog")
    error_message = "topic_prefix must start with a letter, hold only letters, digits, '-' or '_', and not start with 'goog'."
  }
}

variable "debezium_server_id" {
  description = "MySQL server_id Debezium uses as a replica: unique among every replica and binlog client of the source. MySQL disconnects an older client that reuses it, which also stops a second Debezium from streaming."
  type        = number
  default     = 184054

  validation {
    condition     = var.debezium_server_id >= 1 && var.debezium_server_id <= 4294967295
    error_message = "debezium_server_id must be in 1..4294967295."
  }
}

variable "debezium_db_user" {
  description = "MySQL user Debezium connects as (created by this module)."
  type        = string
  default     = "debezium"
}

variable "debezium_state_database" {
  description = "Database on the source instance that holds Debezium's offsets and schema history (created by this module; never captured)."
  type        = string
  default     = "debezium_state"
}

variable "debezium_password_version" {
  description = "Increment to generate and store a new password for the Debezium MySQL user (write-only: it never enters the Terraform state)."
  type        = number
  default     = 1
}

variable "snapshot_mode" {
  description = "Debezium snapshot.mode. when_needed snapshots on first start and again whenever the stored binlog position was purged."
  type        = string
  default     = "when_needed"

  validation {
    condition     = contains(["when_needed", "initial", "no_data", "recovery"], var.snapshot_mode)
    error_message = "snapshot_mode must be when_needed (recommended), initial, no_data or recovery."
  }
}

variable "snapshot_locking_mode" {
  description = "Debezium snapshot.locking.mode. Cloud SQL forbids the global read lock, so minimal/extended fall back to table locks held for the whole snapshot; none takes no lock and is safe while no DDL runs on the captured tables during a snapshot."
  type        = string
  default     = "none"

  validation {
    condition     = contains(["none", "minimal", "extended"], var.snapshot_locking_mode)
    error_message = "snapshot_locking_mode must be none, minimal or extended."
  }
}

variable "heartbeat_interval_ms" {
  description = "Debezium heartbeat.interval.ms: keeps the stored binlog position moving while the captured tables are quiet, and feeds the 'Debezium down' alert."
  type        = number
  default     = 10000
}

variable "debezium_cpu" {
  description = "vCPUs of the Debezium worker pool instance."
  type        = string
  default     = "1"
}

variable "debezium_memory" {
  description = "Memory of the Debezium worker pool instance."
  type        = string
  default     = "2Gi"
}

# ---------------------------------------------------------------------------------------------------
# Memorystore for Redis
# ---------------------------------------------------------------------------------------------------

variable "redis_tier" {
  description = "STANDARD_HA (replica in another zone, automatic failover) or BASIC."
  type        = string
  default     = "STANDARD_HA"

  validation {
    condition     = contains(["STANDARD_HA", "BASIC"], var.redis_tier)
    error_message = "redis_tier must be STANDARD_HA or BASIC."
  }
}

variable "redis_memory_size_gb" {
  description = "Memorystore capacity in GiB. Size it for every cached row plus tombstones (`make memory` measures bytes per row)."
  type        = number
  default     = 5
}

variable "redis_version" {
  description = "Memorystore Redis version."
  type        = string
  default     = "REDIS_7_2"
}

variable "redis_maxmemory_policy" {
  description = "maxmemory-policy. noeviction (default): a full cache rejects writes, the function answers 503, Pub/Sub keeps the changes and the memory alert fires; evicting rows or tombstones would instead silently drop the version guard of those keys."
  type        = string
  default     = "noeviction"

  validation {
    condition     = contains(["noeviction", "allkeys-lru", "allkeys-lfu", "volatile-lru", "volatile-lfu", "volatile-ttl", "allkeys-random", "volatile-random"], var.redis_maxmemory_policy)
    error_message = "redis_maxmemory_policy must be a Redis maxmemory-policy."
  }
}

# ---------------------------------------------------------------------------------------------------
# Pub/Sub delivery
# ---------------------------------------------------------------------------------------------------

variable "ack_deadline_seconds" {
  description = "Push request timeout (and ack deadline) of the subscriptions."
  type        = number
  default     = 60
}

variable "max_delivery_attempts" {
  description = "Deliveries of one message before the subscription's dead-letter policy forwards it (5-100). Messages the function finds permanently bad are dead-lettered by the function on the first attempt; this backstop catches messages that keep failing with 5xx."
  type        = number
  default     = 50

  validation {
    condition     = var.max_delivery_attempts >= 5 && var.max_delivery_attempts <= 100
    error_message = "max_delivery_attempts must be between 5 and 100."
  }
}

variable "retry_minimum_backoff" {
  description = "Minimum delay between redeliveries of a failed message."
  type        = string
  default     = "5s"
}

variable "retry_maximum_backoff" {
  description = "Maximum delay between redeliveries of a failed message."
  type        = string
  default     = "300s"
}

variable "message_retention_duration" {
  description = "How long the subscriptions (and table topics, for seek/replay) keep messages."
  type        = string
  default     = "604800s"
}

variable "grant_pubsub_token_creator" {
  description = "Grant the Pub/Sub service agent roles/iam.serviceAccountTokenCreator on the push identity. Only projects created before 8 April 2021 need it for authenticated push."
  type        = bool
  default     = false
}

# ---------------------------------------------------------------------------------------------------
# Monitoring
# ---------------------------------------------------------------------------------------------------

variable "notification_emails" {
  description = "E-mail addresses the alert policies notify."
  type        = list(string)
  default     = []
}

variable "backlog_age_alert_seconds" {
  description = "Alert when the oldest unacknowledged change of a subscription is older than this."
  type        = number
  default     = 300
}

variable "replication_lag_alert_ms" {
  description = "Alert when the p99 of cloudsql_cache.replication_lag (commit to cache write) exceeds this."
  type        = number
  default     = 60000
}

variable "apply_error_alert_per_second" {
  description = "Alert when the function answers more than this many 5xx per second (apply errors that Pub/Sub retries)."
  type        = number
  default     = 1
}
