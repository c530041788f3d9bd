# The source: a Cloud SQL for MySQL instance with binary logging in row format and full row images,
# reachable on a private IP only. Either created here or an existing one (create_cloudsql_instance).

resource "google_sql_database_instance" "source" {
  count = var.create_cloudsql_instance ? 1 : 0

  project             = var.project_id
  name                = "${var.name_prefix}-mysql"
  region              = var.region
  database_version    = var.cloudsql_database_version
  deletion_protection = var.cloudsql_deletion_protection

  settings {
    tier                        = var.cloudsql_tier
    edition                     = var.cloudsql_edition
    availability_type           = var.cloudsql_availability_type
    disk_autoresize             = true
    deletion_protection_enabled = var.cloudsql_deletion_protection
    user_labels                 = local.labels

    ip_configuration {
      # Private IP only: no public address, no authorized networks.
      ipv4_enabled    = false
      private_network = local.network_id
      ssl_mode        = "ENCRYPTED_ONLY"
    }

    backup_configuration {
      enabled = true
      # Binary logging is what Debezium reads; its retention is the transaction log retention, so it
      # bounds the outage Debezium can resume from without a re-snapshot.
      binary_log_enabled             = true
      transaction_log_retention_days = var.binlog_retention_days
      start_time                     = "02:00"

      backup_retention_settings {
        retained_backups = 14
        retention_unit   = "COUNT"
      }
    }

    # Debezium needs row-based binlogs with full row images: every update carries the whole row, which
    # the function writes as the cached value. Cloud SQL for MySQL 8 already logs in ROW format
    # (binlog_format is not a settable flag there); the value must be lowercase.
    database_flags {
      name  = "binlog_row_image"
      value = "full"
    }

    maintenance_window {
      day          = 7
      hour         = 3
      update_track = "stable"
    }

    insights_config {
      query_insights_enabled = true
    }
  }

  depends_on = [google_service_networking_connection.private_services]
}

data "google_sql_database_instance" "existing" {
  count = var.create_cloudsql_instance ? 0 : 1

  project = var.project_id
  name    = var.existing_cloudsql_instance

  lifecycle {
    postcondition {
      condition     = self.private_ip_address != ""
      error_message = "The existing Cloud SQL instance has no private IP: give it one on network_name first (Debezium connects over the VPC only)."
    }
  }
}

locals {
  cloudsql_instance_name = var.create_cloudsql_instance ? google_sql_database_instance.source[0].name : data.google_sql_database_instance.existing[0].name
  cloudsql_private_ip    = var.create_cloudsql_instance ? google_sql_database_instance.source[0].private_ip_address : data.google_sql_database_instance.existing[0].private_ip_address
}

# Debezium's offsets and schema history live in this database on the source instance itself (JDBC
# offset store and JDBC schema history): durable, backed up and replicated with the instance, and no
# extra store to run. It is outside database.include.list, so it is never captured.
resource "google_sql_database" "debezium_state" {
  project   = var.project_id
  instance  = local.cloudsql_instance_name
  name      = var.debezium_state_database
  charset   = "utf8mb4"
  collation = "utf8mb4_0900_ai_ci"
}

# A fresh password per debezium_password_version, written only to the MySQL user and to Secret Manager
# (write-only arguments): it never enters the Terraform state or plan.
ephemeral "random_password" "debezium" {
  length  = 32
  special = false
}

resource "google_sql_user" "debezium" {
  project             = var.project_id
  instance            = local.cloudsql_instance_name
  name                = var.debezium_db_user
  host                = "%"
  password_wo         = ephemeral.random_password.debezium.result
  password_wo_version = var.debezium_password_version
}

resource "google_secret_manager_secret" "debezium_db_password" {
  project   = var.project_id
  labels    = local.labels
  secret_id = "${var.name_prefix}-debezium-db-password"

  replication {
    auto {}
  }

  depends_on = [google_project_service.apis]
}

resource "google_secret_manager_secret_version" "debezium_db_password" {
  project                = var.project_id
  secret                 = google_secret_manager_secret.debezium_db_password.id
  secret_data_wo         = ephemeral.random_password.debezium.result
  secret_data_wo_version = var.debezium_password_version
}
