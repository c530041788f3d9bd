# One service account per workload, each holding only resource-level roles on what it touches. No
# project-level role beyond metric and log writing, and no basic (owner/editor/viewer) role anywhere:
# terraform/hcl_test.go fails if one appears.

resource "google_service_account" "function" {
  project      = var.project_id
  account_id   = "${var.name_prefix}-fn"
  display_name = "cloudsql-cache apply function (Cloud Run runtime)"
}

resource "google_service_account" "debezium" {
  project      = var.project_id
  account_id   = "${var.name_prefix}-dbz"
  display_name = "cloudsql-cache Debezium Server (Cloud Run worker pool runtime)"
}

resource "google_service_account" "push" {
  project      = var.project_id
  account_id   = "${var.name_prefix}-push"
  display_name = "cloudsql-cache Pub/Sub push identity (OIDC token subject)"
}

resource "google_service_account" "build" {
  project      = var.project_id
  account_id   = "${var.name_prefix}-build"
  display_name = "cloudsql-cache Cloud Build (tests, images, function deploys)"
}

# --- Function -----------------------------------------------------------------------------------------

# OpenTelemetry metrics (cloudsql_cache.events, cloudsql_cache.replication_lag, …) to Cloud Monitoring:
# the function exports OTLP to the Telemetry API (telemetry.googleapis.com), which checks
# telemetry.metrics.write; monitoring.metricWriter covers the Monitoring API for a collector sidecar.
resource "google_project_iam_member" "function_metric_writer" {
  project = var.project_id
  role    = "roles/monitoring.metricWriter"
  member  = google_service_account.function.member
}

resource "google_project_iam_member" "function_telemetry_writer" {
  project = var.project_id
  role    = "roles/telemetry.metricsWriter"
  member  = google_service_account.function.member
}

resource "google_secret_manager_secret_iam_member" "function_secrets" {
  for_each = merge(
    { redis_ca = google_secret_manager_secret.redis_ca.id },
    local.redis_standalone ? { redis_auth = google_secret_manager_secret.redis_auth[0].id } : {},
  )

  project   = var.project_id
  secret_id = each.value
  role      = "roles/secretmanager.secretAccessor"
  member    = google_service_account.function.member
}

# --- Debezium -----------------------------------------------------------------------------------------

resource "google_secret_manager_secret_iam_member" "debezium_db_password" {
  project   = var.project_id
  secret_id = google_secret_manager_secret.debezium_db_password.id
  role      = "roles/secretmanager.secretAccessor"
  member    = google_service_account.debezium.member
}

# --- Pub/Sub push identity ----------------------------------------------------------------------------

# The only principal allowed to invoke the function.
resource "google_cloud_run_v2_service_iam_member" "push_invoker" {
  project  = var.project_id
  location = google_cloud_run_v2_service.function.location
  name     = google_cloud_run_v2_service.function.name
  role     = "roles/run.invoker"
  member   = google_service_account.push.member
}

# Projects created before 8 April 2021 need the Pub/Sub service agent to mint tokens for the push identity.
resource "google_service_account_iam_member" "pubsub_token_creator" {
  count = var.grant_pubsub_token_creator ? 1 : 0

  service_account_id = google_service_account.push.name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = local.pubsub_service_agent
}

# --- Cloud Build --------------------------------------------------------------------------------------

resource "google_project_iam_member" "build_log_writer" {
  project = var.project_id
  role    = "roles/logging.logWriter"
  member  = google_service_account.build.member
}

resource "google_artifact_registry_repository_iam_member" "build_writer" {
  project    = var.project_id
  location   = google_artifact_registry_repository.images.location
  repository = google_artifact_registry_repository.images.name
  role       = "roles/artifactregistry.writer"
  member     = google_service_account.build.member
}

# Deploy new revisions of the function (and nothing else) ...
resource "google_cloud_run_v2_service_iam_member" "build_deployer" {
  project  = var.project_id
  location = google_cloud_run_v2_service.function.location
  name     = google_cloud_run_v2_service.function.name
  role     = "roles/run.developer"
  member   = google_service_account.build.member
}

# ... which run as the function's service account.
resource "google_service_account_iam_member" "build_acts_as_function" {
  service_account_id = google_service_account.function.name
  role               = "roles/iam.serviceAccountUser"
  member             = google_service_account.build.member
}

resource "google_storage_bucket" "build_source" {
  project                     = var.project_id
  labels                      = local.labels
  name                        = "${var.project_id}-${var.name_prefix}-build-src"
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = true

  lifecycle_rule {
    condition {
      age = 30
    }
    action {
      type = "Delete"
    }
  }
}

resource "google_storage_bucket_iam_member" "build_source_reader" {
  bucket = google_storage_bucket.build_source.name
  role   = "roles/storage.objectViewer"
  member = google_service_account.build.member
}
