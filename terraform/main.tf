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
  # that). Empty values are left out so the function applies its own default. REDIS_PASSWORD comes
  # from Secret Manager and is set next to these in function.tf.
  function_env = {
    REDIS_ADDR            = "${google_redis_instance.cache.host}:${google_redis_instance.cache.port}"
    REDIS_TLS             = "true"
    REDIS_CA_FILE         = "${local.redis_ca_path}/${local.redis_ca_file}"
    REDIS_TIMEOUT         = var.redis_timeout
    DEAD_LETTER_TOPIC     = google_pubsub_topic.dead_letter.id
    CACHE_TABLES          = join(",", var.tables)
    CACHE_EXCLUDE_COLUMNS = join(",", var.exclude_columns)
    CACHE_KEY_TEMPLATE    = var.key_template
    CACHE_KEY_TEMPLATES   = join(",", [for k, v in var.key_templates : "${k}=${v}"])
    CACHE_VERSION_EPOCH   = tostring(var.version_epoch)
    CACHE_TOMBSTONE_TTL   = var.tombstone_ttl
    APPLY_TIMEOUT         = var.apply_timeout
    MAX_BODY_BYTES        = var.max_body_bytes > 0 ? tostring(var.max_body_bytes) : ""
  }
}

resource "google_project_service" "apis" {
  for_each = toset([
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
  ])

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
