# Operations inside the VPC. Cloud SQL and Memorystore have private IPs only, so every tool that talks
# to them runs on the VPC too, as a Cloud Run job with Direct VPC egress on the module's subnet, from
# the tools image (tools/Dockerfile: cachectl and verify):
#
#   - db_setup (narrow_debezium_grants, on by default): run by terraform apply itself whenever what it
#     grants changes (run_execution_token), as the admin user: it narrows the Debezium user to the
#     privileges the connector needs and creates its signal table (cachectl grant-debezium). Its
#     arguments are fixed.
#   - tools (operator_access, off by default): the operator's way in. Executions take their arguments
#     from the operator (gcloud run jobs execute --args), and only the principals in var.operators may
#     run it. Off again, it leaves nothing behind.
#
# Why a job and not a bastion VM: no machine to patch, no SSH keys or IAP tunnel, no idle cost; IAM
# says who may run it, each execution is logged with its arguments and output, and it reaches exactly
# what the function reaches, through the same egress. What it cannot do is an interactive session:
# every operation the README describes is a command.

locals {
  mysql_addr        = "${local.cloudsql_private_ip}:3306"
  cloudsql_ca_path  = "/etc/cloudsql-cache/mysql-ca"
  cloudsql_ca_file  = "ca.pem"
  cloudsql_ca_certs = var.create_cloudsql_instance ? google_sql_database_instance.source[0].server_ca_cert : data.google_sql_database_instance.existing[0].server_ca_cert

  # What cachectl grant-debezium is asked to grant; a change re-runs the job.
  db_setup_args = concat(
    ["grant-debezium", "-user", var.debezium_db_user, "-state-database", var.debezium_state_database, "-databases", join(",", local.databases)],
    var.snapshot_locking_mode == "none" ? [] : ["-lock-tables"],
  )
  # A new execution on every change of the job, of the users it touches or of their passwords (a user
  # Cloud SQL re-creates gets cloudsqlsuperuser again). The job name and token stay under 63 characters.
  db_setup_token = substr(sha256(jsonencode({
    args = local.db_setup_args
    # What grant-debezium does besides its arguments: a new step runs it again on the next apply
    # (signal-table: the state database's debezium_signal, for cachectl snapshot).
    steps    = ["grants", "signal-table"]
    image    = var.tools_image
    admin    = [var.admin_db_user, var.admin_password_version]
    debezium = [google_sql_user.debezium.id, var.debezium_password_version]
    instance = local.cloudsql_instance_name
  })), 0, 16)

  # The operator job's environment: the function's Redis and table settings, so cachectl and verify see
  # exactly the keys the function writes, and the rest of what the tools read.
  tools_env = merge(
    { for k, v in local.function_env : k => v if startswith(k, "REDIS_") || startswith(k, "CACHE_") },
    {
      MYSQL_ADDR               = local.mysql_addr
      MYSQL_USER               = google_sql_user.admin.name
      MYSQL_CA_FILE            = "${local.cloudsql_ca_path}/${local.cloudsql_ca_file}"
      DEAD_LETTER_SUBSCRIPTION = google_pubsub_subscription.dead_letter.id
      TOPIC_PREFIX             = var.topic_prefix
      PUBSUB_REGION            = var.region
      GOOGLE_CLOUD_PROJECT     = var.project_id
    },
  )
}

# --- The admin database user ---------------------------------------------------------------------------

# Generated per admin_password_version and written only to the MySQL user and to Secret Manager.
ephemeral "random_password" "admin" {
  length  = 32
  special = false
}

resource "google_sql_user" "admin" {
  project             = var.project_id
  instance            = local.cloudsql_instance_name
  name                = var.admin_db_user
  host                = "%"
  password_wo         = ephemeral.random_password.admin.result
  password_wo_version = var.admin_password_version
}

resource "google_secret_manager_secret" "admin_db_password" {
  project   = var.project_id
  labels    = local.labels
  secret_id = "${var.name_prefix}-admin-db-password"

  replication {
    auto {}
  }

  depends_on = [google_project_service.apis]
}

resource "google_secret_manager_secret_version" "admin_db_password" {
  project                = var.project_id
  secret                 = google_secret_manager_secret.admin_db_password.id
  secret_data_wo         = ephemeral.random_password.admin.result
  secret_data_wo_version = var.admin_password_version
}

# The instance's server CA, so the tools verify the certificate of what they connect to (Cloud SQL
# requires TLS: ssl_mode ENCRYPTED_ONLY).
resource "google_secret_manager_secret" "cloudsql_ca" {
  project   = var.project_id
  labels    = local.labels
  secret_id = "${var.name_prefix}-mysql-server-ca"

  replication {
    auto {}
  }

  depends_on = [google_project_service.apis]
}

resource "google_secret_manager_secret_version" "cloudsql_ca" {
  project     = var.project_id
  secret      = google_secret_manager_secret.cloudsql_ca.id
  secret_data = join("\n", [for c in local.cloudsql_ca_certs : trimspace(c.cert)])
}

# --- The job that narrows Debezium's grants ------------------------------------------------------------

resource "google_service_account" "db_setup" {
  count = var.narrow_debezium_grants ? 1 : 0

  project      = var.project_id
  account_id   = "${var.name_prefix}-dbsetup"
  display_name = "cloudsql-cache database setup job (narrows the Debezium user's grants)"
}

resource "google_secret_manager_secret_iam_member" "db_setup_secrets" {
  for_each = var.narrow_debezium_grants ? {
    admin_db_password = google_secret_manager_secret.admin_db_password.id
    cloudsql_ca       = google_secret_manager_secret.cloudsql_ca.id
  } : {}

  project   = var.project_id
  secret_id = each.value
  role      = "roles/secretmanager.secretAccessor"
  member    = google_service_account.db_setup[0].member
}

resource "google_cloud_run_v2_job" "db_setup" {
  count = var.narrow_debezium_grants ? 1 : 0

  project  = var.project_id
  labels   = local.labels
  name     = "${var.name_prefix}-db-setup"
  location = var.region
  # It holds nothing: turning narrow_debezium_grants off must be able to delete it.
  deletion_protection = false
  # terraform apply creates an execution and waits for it to complete whenever the token changes.
  run_execution_token = local.db_setup_token

  template {
    task_count = 1

    template {
      service_account = google_service_account.db_setup[0].email
      max_retries     = 3
      timeout         = "600s"

      vpc_access {
        egress = "PRIVATE_RANGES_ONLY"
        network_interfaces {
          network    = local.network_id
          subnetwork = local.subnetwork_id
        }
      }

      containers {
        image = var.tools_image
        args  = local.db_setup_args

        resources {
          limits = {
            cpu    = "1"
            memory = "512Mi"
          }
        }

        env {
          name  = "MYSQL_ADDR"
          value = local.mysql_addr
        }
        env {
          name  = "MYSQL_USER"
          value = google_sql_user.admin.name
        }
        env {
          name  = "MYSQL_CA_FILE"
          value = "${local.cloudsql_ca_path}/${local.cloudsql_ca_file}"
        }
        env {
          name = "MYSQL_PASSWORD"
          value_source {
            secret_key_ref {
              secret  = google_secret_manager_secret.admin_db_password.secret_id
              version = google_secret_manager_secret_version.admin_db_password.version
            }
          }
        }

        volume_mounts {
          name       = "mysql-ca"
          mount_path = local.cloudsql_ca_path
        }
      }

      volumes {
        name = "mysql-ca"
        secret {
          secret = google_secret_manager_secret.cloudsql_ca.secret_id
          items {
            path    = local.cloudsql_ca_file
            version = google_secret_manager_secret_version.cloudsql_ca.version
            mode    = 292 # 0444
          }
        }
      }
    }
  }

  depends_on = [
    google_project_service.apis,
    google_secret_manager_secret_iam_member.db_setup_secrets,
    google_sql_user.debezium,
    google_sql_database.debezium_state,
  ]
}

# --- The operator's job: the way into the VPC --------------------------------------------------------------

resource "google_service_account" "tools" {
  count = var.operator_access ? 1 : 0

  project      = var.project_id
  account_id   = "${var.name_prefix}-ops"
  display_name = "cloudsql-cache operator job (cachectl, verify)"
}

# Redis (cachectl get, verify), the admin user and the server CA (verify, grant-debezium).
resource "google_secret_manager_secret_iam_member" "tools_secrets" {
  for_each = var.operator_access ? merge({
    redis_ca          = google_secret_manager_secret.redis_ca.id
    admin_db_password = google_secret_manager_secret.admin_db_password.id
    cloudsql_ca       = google_secret_manager_secret.cloudsql_ca.id
  }, local.redis_standalone ? { redis_auth = google_secret_manager_secret.redis_auth[0].id } : {}) : {}

  project   = var.project_id
  secret_id = each.value
  role      = "roles/secretmanager.secretAccessor"
  member    = google_service_account.tools[0].member
}

# cachectl dlq: pull and acknowledge dead letters ...
resource "google_pubsub_subscription_iam_member" "tools_dead_letter" {
  count = var.operator_access ? 1 : 0

  project      = var.project_id
  subscription = google_pubsub_subscription.dead_letter.id
  role         = "roles/pubsub.subscriber"
  member       = google_service_account.tools[0].member
}

# ... and publish them back to their table's topic.
resource "google_pubsub_topic_iam_member" "tools_replay" {
  for_each = var.operator_access ? { for t, topic in google_pubsub_topic.table : t => topic.id } : {}

  project = var.project_id
  topic   = each.value
  role    = "roles/pubsub.publisher"
  member  = google_service_account.tools[0].member
}

# The operator job's durable working directory, mounted at /work (Cloud Storage FUSE): a job's own disk
# is lost with the execution, and verify's checkpoint (-checkpoint /work/…) must outlive an
# interrupted one, so that the same command executed again resumes. Objects expire after 30 days.
resource "google_storage_bucket" "tools" {
  count = var.operator_access ? 1 : 0

  project                     = var.project_id
  labels                      = local.labels
  name                        = "${var.project_id}-${var.name_prefix}-tools"
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  # Nothing in it outlives operator_access: switching it off removes the bucket with its checkpoints.
  force_destroy = true

  lifecycle_rule {
    condition {
      age = 30
    }
    action {
      type = "Delete"
    }
  }
}

resource "google_storage_bucket_iam_member" "tools_work" {
  count = var.operator_access ? 1 : 0

  bucket = google_storage_bucket.tools[0].name
  role   = "roles/storage.objectUser"
  member = google_service_account.tools[0].member
}

resource "google_cloud_run_v2_job" "tools" {
  count = var.operator_access ? 1 : 0

  project             = var.project_id
  labels              = local.labels
  name                = "${var.name_prefix}-tools"
  location            = var.region
  deletion_protection = false

  template {
    task_count = 1

    template {
      service_account = google_service_account.tools[0].email
      # An operator's command is not retried behind their back: they read its log and decide.
      max_retries = 0
      timeout     = var.tools_timeout

      vpc_access {
        egress = "PRIVATE_RANGES_ONLY"
        network_interfaces {
          network    = local.network_id
          subnetwork = local.subnetwork_id
        }
      }

      containers {
        image = var.tools_image
        # An execution without arguments prints the usage; operators give theirs with --args.
        args = ["help"]

        resources {
          limits = {
            cpu    = "1"
            memory = "1Gi"
          }
        }

        dynamic "env" {
          for_each = { for name, value in local.tools_env : name => value if value != "" }
          content {
            name  = env.key
            value = env.value
          }
        }

        dynamic "env" {
          for_each = local.redis_secret_env
          content {
            name = env.key
            value_source {
              secret_key_ref {
                secret  = google_secret_manager_secret.redis_auth[0].secret_id
                version = google_secret_manager_secret_version.redis_auth[0].version
              }
            }
          }
        }

        env {
          name = "MYSQL_PASSWORD"
          value_source {
            secret_key_ref {
              secret  = google_secret_manager_secret.admin_db_password.secret_id
              version = google_secret_manager_secret_version.admin_db_password.version
            }
          }
        }

        volume_mounts {
          name       = "redis-ca"
          mount_path = local.redis_ca_path
        }
        volume_mounts {
          name       = "mysql-ca"
          mount_path = local.cloudsql_ca_path
        }
        volume_mounts {
          name       = "work"
          mount_path = "/work"
        }
      }

      volumes {
        name = "work"
        gcs {
          bucket    = google_storage_bucket.tools[0].name
          read_only = false
        }
      }
      volumes {
        name = "redis-ca"
        secret {
          secret = google_secret_manager_secret.redis_ca.secret_id
          items {
            path    = local.redis_ca_file
            version = google_secret_manager_secret_version.redis_ca.version
            mode    = 292 # 0444
          }
        }
      }
      volumes {
        name = "mysql-ca"
        secret {
          secret = google_secret_manager_secret.cloudsql_ca.secret_id
          items {
            path    = local.cloudsql_ca_file
            version = google_secret_manager_secret_version.cloudsql_ca.version
            mode    = 292 # 0444
          }
        }
      }
    }
  }

  depends_on = [
    google_project_service.apis,
    google_secret_manager_secret_iam_member.tools_secrets,
    google_storage_bucket_iam_member.tools_work,
  ]
}

# Who may run it, with arguments of their own: these principals, on this job only.
resource "google_cloud_run_v2_job_iam_member" "operators" {
  for_each = var.operator_access ? toset(var.operators) : toset([])

  project  = var.project_id
  location = google_cloud_run_v2_job.tools[0].location
  name     = google_cloud_run_v2_job.tools[0].name
  role     = "roles/run.jobsExecutorWithOverrides"
  member   = each.value
}
