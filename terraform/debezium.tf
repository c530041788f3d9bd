# Debezium Server on a Cloud Run worker pool: always on (no requests to scale on), at most one instance
# (MANUAL scaling, manual_instance_count = debezium_instances: 1 streams, 0 stops it), restarted by the
# platform when the process exits, which it does on any publish failure (debezium-server/README.md).
# Offsets and schema history are in the debezium_state database on the source instance (cloudsql.tf),
# so a new instance resumes where the last one stopped.
#
# Their tables belong to the version epoch: raising version_epoch gives Debezium new, empty tables, so
# it snapshots the database afresh, and the new snapshot rewrites every row in the new epoch. Fresh
# offsets and a raised epoch are one procedure (README: A new version epoch); tying them
# together means no apply can do one without the other. Epoch 0 keeps the names the tables always had.

locals {
  debezium_state_suffix  = var.version_epoch == 0 ? "" : "_epoch_${var.version_epoch}"
  debezium_offsets_table = "debezium_offsets${local.debezium_state_suffix}"
  debezium_history_table = "debezium_schema_history${local.debezium_state_suffix}"

  # Read by debezium-server/application.properties.tmpl (rendered by the image's entrypoint).
  debezium_env = {
    GCP_PROJECT           = var.project_id
    PUBSUB_REGION         = var.region
    DB_HOST               = local.cloudsql_private_ip
    DB_PORT               = "3306"
    DB_USER               = google_sql_user.debezium.name
    DB_SERVER_ID          = tostring(var.debezium_server_id)
    DB_STATE_DATABASE     = google_sql_database.debezium_state.name
    TOPIC_PREFIX          = var.topic_prefix
    HEARTBEAT_PREFIX      = local.heartbeat_prefix
    HEARTBEAT_INTERVAL_MS = tostring(var.heartbeat_interval_ms)
    SNAPSHOT_MODE         = var.snapshot_mode
    SNAPSHOT_LOCKING_MODE = var.snapshot_locking_mode
    DATABASE_INCLUDE_LIST = join(",", local.databases)
    # Anchored regular expressions with literal dots: Debezium matches these lists as regexes.
    TABLE_INCLUDE_LIST  = join(",", [for t in var.tables : replace(t, ".", "\\.")])
    COLUMN_EXCLUDE_LIST = join(",", [for c in var.exclude_columns : replace(c, ".", "\\.")])
    JAVA_OPTS           = "-XX:MaxRAMPercentage=75.0 -XX:+ExitOnOutOfMemoryError"
    # Debezium Server reads DEBEZIUM_* environment variables as the properties they spell (dots for
    # underscores), over application.properties: the state tables of this epoch (see above).
    DEBEZIUM_SOURCE_OFFSET_STORAGE_JDBC_TABLE_NAME          = local.debezium_offsets_table
    DEBEZIUM_SOURCE_SCHEMA_HISTORY_INTERNAL_JDBC_TABLE_NAME = local.debezium_history_table
  }
}

resource "google_cloud_run_v2_worker_pool" "debezium" {
  project             = var.project_id
  labels              = local.labels
  name                = "${var.name_prefix}-debezium"
  location            = var.region
  deletion_protection = var.deletion_protection

  # One binlog reader per source, or none (stopped). A second one (for instance during a revision
  # rollout) reuses the same server_id, and MySQL disconnects the older binlog connection, so two never
  # stream at once.
  scaling {
    scaling_mode          = "MANUAL"
    manual_instance_count = var.debezium_instances
  }

  template {
    service_account = google_service_account.debezium.email

    vpc_access {
      egress = "PRIVATE_RANGES_ONLY"
      network_interfaces {
        network    = local.network_id
        subnetwork = local.subnetwork_id
      }
    }

    containers {
      image = var.debezium_image

      resources {
        limits = {
          cpu    = var.debezium_cpu
          memory = var.debezium_memory
        }
      }

      dynamic "env" {
        for_each = { for name, value in local.debezium_env : name => value if value != "" }
        content {
          name  = env.key
          value = env.value
        }
      }

      env {
        name = "DB_PASSWORD"
        value_source {
          secret_key_ref {
            secret  = google_secret_manager_secret.debezium_db_password.secret_id
            version = google_secret_manager_secret_version.debezium_db_password.version
          }
        }
      }

      # Quarkus SmallRye Health: /q/health/live is DOWN once the connector has stopped.
      startup_probe {
        http_get {
          path = "/q/health/live"
          port = 8080
        }
        initial_delay_seconds = 10
        period_seconds        = 10
        timeout_seconds       = 5
        failure_threshold     = 24
      }

      liveness_probe {
        http_get {
          path = "/q/health/live"
          port = 8080
        }
        period_seconds    = 30
        timeout_seconds   = 5
        failure_threshold = 3
      }
    }
  }

  depends_on = [
    google_project_service.apis,
    google_secret_manager_secret_iam_member.debezium_db_password,
    google_pubsub_topic_iam_member.debezium_publisher,
    # Subscriptions first: messages published before a subscription exists are not delivered to it.
    google_pubsub_subscription.push,
    # The Debezium user narrowed first (access.tf); and when an apply changes both the function and
    # Debezium (a new version epoch), the function's new revision serves before Debezium restarts.
    google_cloud_run_v2_job.db_setup,
    google_cloud_run_v2_service.function,
  ]
}
