output "function_url" {
  description = "URL of the apply function (internal ingress, IAM-authenticated; only the push identity may call it)."
  value       = google_cloud_run_v2_service.function.uri
}

output "function_service" {
  description = "Cloud Run service name of the function: cloudbuild.yaml's _FUNCTION_SERVICE."
  value       = google_cloud_run_v2_service.function.name
}

output "debezium_worker_pool" {
  description = "Cloud Run worker pool running Debezium Server."
  value       = google_cloud_run_v2_worker_pool.debezium.name
}

output "artifact_registry" {
  description = "Docker repository for both images: cloudbuild.yaml's _REPOSITORY is its last path element."
  value       = "${google_artifact_registry_repository.images.location}-docker.pkg.dev/${var.project_id}/${google_artifact_registry_repository.images.repository_id}"
}

output "build_service_account" {
  description = "Service account to run cloudbuild.yaml with (gcloud builds submit --service-account)."
  value       = google_service_account.build.id
}

output "build_source_bucket" {
  description = "Bucket for gcloud builds submit --gcs-source-staging-dir (the build service account can read it)."
  value       = "gs://${google_storage_bucket.build_source.name}/source"
}

output "table_topics" {
  description = "Pub/Sub topic Debezium publishes each table's changes to."
  value       = { for t, topic in google_pubsub_topic.table : t => topic.id }
}

output "schema_change_topic" {
  description = "Pub/Sub topic Debezium publishes schema changes to (named topic_prefix), with its own push subscription to the function."
  value       = google_pubsub_topic.schema_changes.id
}

output "dead_letter_topic" {
  description = "DEAD_LETTER_TOPIC of the function and dead-letter topic of the subscriptions."
  value       = google_pubsub_topic.dead_letter.id
}

output "dead_letter_subscription" {
  description = "Pull subscription holding dead letters for inspection and replay."
  value       = google_pubsub_subscription.dead_letter.id
}

output "heartbeat_topic" {
  description = "Debezium heartbeat topic (feeds the 'Debezium down' alert)."
  value       = google_pubsub_topic.heartbeat.id
}

output "redis_host" {
  description = "Memorystore endpoint (TLS, AUTH) for readers of the cache: host:port."
  value       = "${google_redis_instance.cache.host}:${google_redis_instance.cache.port}"
}

output "redis_auth_secret" {
  description = "Secret Manager secret holding the Redis AUTH string."
  value       = google_secret_manager_secret.redis_auth.id
}

output "redis_ca_secret" {
  description = "Secret Manager secret holding the Redis server CA (PEM) readers need for TLS."
  value       = google_secret_manager_secret.redis_ca.id
}

output "cloudsql_instance" {
  description = "Cloud SQL instance captured by Debezium."
  value       = local.cloudsql_instance_name
}

output "cloudsql_private_ip" {
  description = "Private IP Debezium connects to."
  value       = local.cloudsql_private_ip
}

output "debezium_db_password_secret" {
  description = "Secret Manager secret holding the Debezium MySQL user's password."
  value       = google_secret_manager_secret.debezium_db_password.id
}

output "dashboard" {
  description = "Cloud Monitoring dashboard."
  value       = "https://console.cloud.google.com/monitoring/dashboards/builder/${element(split("/", google_monitoring_dashboard.main.id), 3)}?project=${var.project_id}"
}
