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

output "topic_message_retention_duration" {
  description = "How long the table and schema-change topics keep every message (null: none): how far back the repair after a Redis loss, or a seek by hand, can replay. A loss older than it needs a re-snapshot."
  value       = local.topic_retention
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
  description = "Memorystore endpoint (TLS) for readers of the cache: their REDIS_ADDR (host:port), with REDIS_TLS=true; for the cluster engines the discovery endpoint, with REDIS_MODE=cluster."
  value       = local.redis_addr
}

output "redis_mode" {
  description = "Readers' REDIS_MODE: standalone for the redis engine, cluster for redis_cluster and valkey."
  value       = local.redis_standalone ? "standalone" : "cluster"
}

output "redis_auth_secret" {
  description = "Secret Manager secret holding the Redis AUTH string (redis engine); null for the cluster engines, which authenticate with IAM (redis_connection_role)."
  value       = local.redis_standalone ? google_secret_manager_secret.redis_auth[0].id : null
}

output "redis_connection_role" {
  description = "The role a reader's service account needs to authenticate to the cluster with IAM (roles/redis.dbConnectionUser, roles/memorystore.dbConnectionUser); null for the redis engine, which uses the AUTH string."
  value       = local.redis_connection_role
}

output "redis_cluster" {
  description = "The cluster's resource name (projects/…/locations/…/clusters/… or …/instances/…) for the cluster engines; null for the redis engine."
  value       = var.redis_engine == "redis_cluster" ? google_redis_cluster.cache[0].id : var.redis_engine == "valkey" ? google_memorystore_instance.cache[0].id : null
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
  description = "Private IP Debezium connects to; readers' MYSQL_ADDR is it and port 3306."
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

output "cloudsql_server_ca_cert" {
  description = "PEM of the Cloud SQL instance's server CA: readers' MYSQL_CA_FILE (with MYSQL_TLS=verify-ca), as ssl_mode ENCRYPTED_ONLY requires TLS."
  # A splat, not [0]: the certificate is only known once the instance exists. The provider marks the
  # whole server_ca_cert block sensitive; a CA certificate is public (every client is given it).
  value = nonsensitive(join("\n", var.create_cloudsql_instance ? google_sql_database_instance.source[0].server_ca_cert[*].cert : data.google_sql_database_instance.existing[0].server_ca_cert[*].cert))
}

output "version_epoch" {
  description = "The version epoch applied (CACHE_VERSION_EPOCH): terraform/scripts/restore reads it to raise it by exactly one."
  value       = var.version_epoch
}

output "debezium_instances" {
  description = "Instances of the Debezium worker pool applied: 1 streaming, 0 stopped."
  value       = var.debezium_instances
}

output "debezium_state_tables" {
  description = "The tables holding Debezium's offsets and schema history in the state database for this version epoch (a new epoch starts new, empty ones)."
  value = {
    database       = google_sql_database.debezium_state.name
    offsets        = local.debezium_offsets_table
    schema_history = local.debezium_history_table
  }
}

output "admin_db_password_secret" {
  description = "Secret Manager secret holding the admin MySQL user's password (the tools' jobs read it; so can you, with secretAccessor)."
  value       = google_secret_manager_secret.admin_db_password.id
}

output "tools_job" {
  description = "The operator job (operator_access): gcloud run jobs execute <this> --region <region> --wait --args=…; null while operator_access is off."
  value       = var.operator_access ? google_cloud_run_v2_job.tools[0].name : null
}

output "db_setup_job" {
  description = "The job that narrows the Debezium user's grants on apply (narrow_debezium_grants); null when off."
  value       = var.narrow_debezium_grants ? google_cloud_run_v2_job.db_setup[0].name : null
}

output "push_subscriptions" {
  description = "The push subscription of each table (and schema_changes, of the schema-change topic): the backlog terraform/scripts/restore waits to drain."
  value       = { for t, s in google_pubsub_subscription.push : t => s.id }
}
