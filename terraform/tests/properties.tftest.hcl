# The properties the deployment's correctness and security rest on, asserted on the planned values of
# the real hashicorp/google schema (mocked API, see mocks/google.tfmock.hcl). Each error message starts
# with the property's tag in brackets: terraform/plan_test.go runs this file against a module with every
# property broken at once and requires each tag to fail, so none of these assertions can pass vacuously.
# The properties that hold for every resource of a kind (no basic role, no public member, labels,
# project) are checked over the whole plan of every run by plan_test.go, which can enumerate resources.

mock_provider "google" {
  override_during = plan
  source          = "./tests/mocks"
}

variables {
  project_id          = "my-project"
  tables              = ["shop.orders", "shop.customers", "billing.invoices"]
  key_templates       = { "shop.orders" = "order:{id}" }
  exclude_columns     = ["shop.customers.password_hash"]
  notification_emails = ["oncall@example.com"]
  operator_access     = true
  operators           = ["group:oncall@example.com"]
  function_image      = "europe-west1-docker.pkg.dev/my-project/cloudsql-cache/function:b1"
  debezium_image      = "europe-west1-docker.pkg.dev/my-project/cloudsql-cache/debezium-server:b1"
  tools_image         = "europe-west1-docker.pkg.dev/my-project/cloudsql-cache/tools:b1"
}

run "properties" {
  command = plan

  # --- Ordering -----------------------------------------------------------------------------------

  assert {
    condition     = length(google_pubsub_subscription.push) == 4 && alltrue([for t in var.tables : try(google_pubsub_subscription.push[t].topic == google_pubsub_topic.table[t].id, false)])
    error_message = "[ordering] every table must have one push subscription on its own topic."
  }

  assert {
    condition     = google_pubsub_topic.schema_changes.name == var.topic_prefix && google_pubsub_subscription.push["schema_changes"].topic == google_pubsub_topic.schema_changes.id
    error_message = "[ordering] Debezium's schema changes (topic = topic.prefix) must have a push subscription to the function, like the tables' (it sweeps tables on DDL and completes snapshots from them)."
  }

  assert {
    condition     = alltrue([for s in google_pubsub_subscription.push : s.enable_message_ordering == true])
    error_message = "[ordering] every push subscription must deliver in ordering-key order (enable_message_ordering = true)."
  }

  # --- Push with OIDC -----------------------------------------------------------------------------

  assert {
    condition = alltrue([for s in google_pubsub_subscription.push : try(
      s.push_config[0].push_endpoint == google_cloud_run_v2_service.function.uri &&
      s.push_config[0].oidc_token[0].service_account_email == google_service_account.push.email &&
      s.push_config[0].oidc_token[0].audience == google_cloud_run_v2_service.function.uri,
    false)])
    error_message = "[oidc] every push must go to the function's URL with an OIDC token of the push service account, audience = that URL."
  }

  assert {
    condition = (google_cloud_run_v2_service_iam_member.push_invoker.role == "roles/run.invoker" &&
      google_cloud_run_v2_service_iam_member.push_invoker.member == google_service_account.push.member &&
    google_cloud_run_v2_service_iam_member.push_invoker.name == google_cloud_run_v2_service.function.name)
    error_message = "[oidc] the push service account must hold roles/run.invoker on the function."
  }

  # --- Dead letters -------------------------------------------------------------------------------

  assert {
    condition = alltrue([for s in google_pubsub_subscription.push : try(
      s.dead_letter_policy[0].dead_letter_topic == google_pubsub_topic.dead_letter.id &&
      s.dead_letter_policy[0].max_delivery_attempts >= 5 && s.dead_letter_policy[0].max_delivery_attempts <= 100 &&
      s.expiration_policy[0].ttl == "",
    false)])
    error_message = "[dead-letter] every push subscription needs a dead_letter_policy to the dead-letter topic (5-100 attempts) and must never expire."
  }

  assert {
    condition     = google_pubsub_subscription.dead_letter.topic == google_pubsub_topic.dead_letter.id && !contains([for t in google_pubsub_topic.table : t.id], google_pubsub_topic.dead_letter.id)
    error_message = "[dead-letter] the dead-letter topic must be its own topic with its own subscription (a topic without one loses what is published to it)."
  }

  assert {
    condition = (google_pubsub_topic_iam_member.dead_letter_service_agent.topic == google_pubsub_topic.dead_letter.id &&
      google_pubsub_topic_iam_member.dead_letter_service_agent.role == "roles/pubsub.publisher" &&
      google_pubsub_topic_iam_member.dead_letter_service_agent.member == "serviceAccount:service-123456789012@gcp-sa-pubsub.iam.gserviceaccount.com" &&
      alltrue([for k, s in google_pubsub_subscription.push : try(
        google_pubsub_subscription_iam_member.dead_letter_service_agent[k].subscription == s.id &&
        google_pubsub_subscription_iam_member.dead_letter_service_agent[k].role == "roles/pubsub.subscriber" &&
        google_pubsub_subscription_iam_member.dead_letter_service_agent[k].member == google_pubsub_topic_iam_member.dead_letter_service_agent.member,
    false)]))
    error_message = "[dead-letter] the Pub/Sub service agent needs publisher on the dead-letter topic and subscriber on every push subscription to forward dead letters."
  }

  assert {
    condition = (google_pubsub_topic_iam_member.function_dead_letter_publisher.topic == google_pubsub_topic.dead_letter.id &&
      google_pubsub_topic_iam_member.function_dead_letter_publisher.member == google_service_account.function.member &&
      google_pubsub_topic_iam_member.function_dead_letter_publisher.role == "roles/pubsub.publisher" &&
    try(one([for e in google_cloud_run_v2_service.function.template[0].containers[0].env : e.value if e.name == "DEAD_LETTER_TOPIC"]), "") == google_pubsub_topic.dead_letter.id)
    error_message = "[dead-letter] the function must publish its own dead letters to the dead-letter topic (DEAD_LETTER_TOPIC, and publisher on it)."
  }

  # --- Private IPs only ---------------------------------------------------------------------------

  assert {
    condition = try(
      google_sql_database_instance.source[0].settings[0].ip_configuration[0].ipv4_enabled == false &&
      google_sql_database_instance.source[0].settings[0].ip_configuration[0].private_network == google_compute_network.vpc[0].id &&
      length(google_sql_database_instance.source[0].settings[0].ip_configuration[0].authorized_networks) == 0 &&
      google_sql_database_instance.source[0].settings[0].ip_configuration[0].ssl_mode == "ENCRYPTED_ONLY",
    false)
    error_message = "[private-ip] Cloud SQL must have no public IPv4 address, no authorized networks, a private IP on the VPC and encrypted connections only."
  }

  assert {
    condition     = google_redis_instance.cache.connect_mode == "PRIVATE_SERVICE_ACCESS" && google_redis_instance.cache.authorized_network == google_compute_network.vpc[0].id
    error_message = "[private-ip] Memorystore must be reached through private services access on the VPC."
  }

  assert {
    condition     = alltrue([for a in google_compute_global_address.private_services : a.address_type == "INTERNAL" && a.purpose == "VPC_PEERING"])
    error_message = "[private-ip] the private services range must be an INTERNAL VPC_PEERING range."
  }

  assert {
    condition = alltrue([for vpc in [google_cloud_run_v2_service.function.template[0].vpc_access[0], google_cloud_run_v2_worker_pool.debezium.template[0].vpc_access[0]] : try(
      vpc.egress == "PRIVATE_RANGES_ONLY" && vpc.network_interfaces[0].network == google_compute_network.vpc[0].id && vpc.network_interfaces[0].subnetwork == google_compute_subnetwork.run[0].id,
    false)])
    error_message = "[private-ip] the function and Debezium must reach the private IPs through Direct VPC egress on the module's subnet."
  }

  # --- Redis AUTH and TLS -------------------------------------------------------------------------

  assert {
    condition     = google_redis_instance.cache.auth_enabled == true && google_redis_instance.cache.transit_encryption_mode == "SERVER_AUTHENTICATION"
    error_message = "[redis-auth-tls] Memorystore must require AUTH and TLS (transit_encryption_mode = SERVER_AUTHENTICATION)."
  }

  assert {
    condition = try(
      one([for e in google_cloud_run_v2_service.function.template[0].containers[0].env : e.value if e.name == "REDIS_TLS"]) == "true" &&
      one([for e in google_cloud_run_v2_service.function.template[0].containers[0].env : e.value if e.name == "REDIS_ADDR"]) == format("%s:%d", google_redis_instance.cache.host, google_redis_instance.cache.port),
    false)
    error_message = "[redis-auth-tls] the function must connect to the instance's host and TLS port with REDIS_TLS=true."
  }

  assert {
    condition = try(
      one([for e in google_cloud_run_v2_service.function.template[0].containers[0].env : e.value_source[0].secret_key_ref[0].secret if e.name == "REDIS_PASSWORD"]) == google_secret_manager_secret.redis_auth.secret_id &&
      google_secret_manager_secret_version.redis_auth.secret == google_secret_manager_secret.redis_auth.id &&
      nonsensitive(google_secret_manager_secret_version.redis_auth.secret_data == google_redis_instance.cache.auth_string),
    false)
    error_message = "[redis-auth-tls] the function's REDIS_PASSWORD must be the instance's AUTH string, from Secret Manager."
  }

  assert {
    condition = try(
      google_cloud_run_v2_service.function.template[0].volumes[0].secret[0].secret == google_secret_manager_secret.redis_ca.secret_id &&
      google_cloud_run_v2_service.function.template[0].containers[0].volume_mounts[0].name == google_cloud_run_v2_service.function.template[0].volumes[0].name &&
      startswith(
        one([for e in google_cloud_run_v2_service.function.template[0].containers[0].env : e.value if e.name == "REDIS_CA_FILE"]),
        "${google_cloud_run_v2_service.function.template[0].containers[0].volume_mounts[0].mount_path}/"
      ) &&
      google_secret_manager_secret_version.redis_ca.secret == google_secret_manager_secret.redis_ca.id,
    false)
    error_message = "[redis-auth-tls] the function must mount the secret holding the server CA where REDIS_CA_FILE points."
  }

  # --- Not publicly invokable ---------------------------------------------------------------------

  assert {
    condition     = google_cloud_run_v2_service.function.ingress == "INGRESS_TRAFFIC_INTERNAL_ONLY" && google_cloud_run_v2_service.function.invoker_iam_disabled == false
    error_message = "[not-public] the function must take internal traffic only and check the invoker's IAM."
  }

  assert {
    condition = alltrue([for m in [google_cloud_run_v2_service_iam_member.push_invoker, google_cloud_run_v2_service_iam_member.build_deployer] :
    m.role != "roles/run.invoker" || m.member == google_service_account.push.member])
    error_message = "[not-public] nobody but the push service account may hold roles/run.invoker on the function."
  }

  # --- No basic roles, least privilege ------------------------------------------------------------

  assert {
    condition = toset([for g in [google_project_iam_member.function_metric_writer, google_project_iam_member.function_telemetry_writer, google_project_iam_member.build_log_writer] : "${g.member} ${g.role}"]) == toset([
      "${google_service_account.function.member} roles/monitoring.metricWriter",
      "${google_service_account.function.member} roles/telemetry.metricsWriter",
      "${google_service_account.build.member} roles/logging.logWriter",
    ])
    error_message = "[least-privilege] the only project-level grants are metric writing for the function and log writing for the build."
  }

  assert {
    condition = length(toset([
      google_cloud_run_v2_service.function.template[0].service_account,
      google_cloud_run_v2_worker_pool.debezium.template[0].service_account,
      google_service_account.push.email,
      google_service_account.build.email,
      ])) == 4 && google_cloud_run_v2_service.function.template[0].service_account == google_service_account.function.email && (
    google_cloud_run_v2_worker_pool.debezium.template[0].service_account == google_service_account.debezium.email)
    error_message = "[least-privilege] the function, Debezium, the push identity and the build must each run as a service account of their own."
  }

  assert {
    condition = (toset([for g in google_secret_manager_secret_iam_member.function_secrets : g.secret_id]) == toset([google_secret_manager_secret.redis_auth.id, google_secret_manager_secret.redis_ca.id]) &&
      alltrue([for g in google_secret_manager_secret_iam_member.function_secrets : g.member == google_service_account.function.member && g.role == "roles/secretmanager.secretAccessor"]) &&
      google_secret_manager_secret_iam_member.debezium_db_password.secret_id == google_secret_manager_secret.debezium_db_password.id &&
    google_secret_manager_secret_iam_member.debezium_db_password.member == google_service_account.debezium.member)
    error_message = "[least-privilege] each workload may read its own secrets only: the function the Redis AUTH string and CA, Debezium its database password."
  }

  assert {
    condition = (toset([for g in google_pubsub_topic_iam_member.debezium_publisher : g.topic]) == toset(concat([for t in google_pubsub_topic.table : t.id], [google_pubsub_topic.heartbeat.id, google_pubsub_topic.schema_changes.id])) &&
    alltrue([for g in google_pubsub_topic_iam_member.debezium_publisher : g.member == google_service_account.debezium.member && g.role == "roles/pubsub.publisher"]))
    error_message = "[least-privilege] Debezium may publish to the table topics, the schema-change topic and its heartbeat topic only."
  }

  assert {
    condition = (google_cloud_run_v2_service_iam_member.build_deployer.role == "roles/run.developer" &&
      google_cloud_run_v2_service_iam_member.build_deployer.name == google_cloud_run_v2_service.function.name &&
      google_service_account_iam_member.build_acts_as_function.service_account_id == google_service_account.function.name &&
    google_service_account_iam_member.build_acts_as_function.member == google_service_account.build.member)
    error_message = "[least-privilege] the build may deploy the function service only, as the function's service account."
  }

  # --- Secrets only in Secret Manager -------------------------------------------------------------

  assert {
    condition = alltrue(flatten([for env in [google_cloud_run_v2_service.function.template[0].containers[0].env, google_cloud_run_v2_worker_pool.debezium.template[0].containers[0].env] :
    [for e in env : e.value == null && length(e.value_source) == 1 if can(regex("(?i)password|secret|token|auth", e.name))]]))
    error_message = "[secrets] an environment variable that holds a password, secret, token or AUTH string must come from Secret Manager (value_source), never a plain value."
  }

  assert {
    condition = try(
      one([for e in google_cloud_run_v2_worker_pool.debezium.template[0].containers[0].env : e.value_source[0].secret_key_ref[0].secret if e.name == "DB_PASSWORD"]) == google_secret_manager_secret.debezium_db_password.secret_id &&
      google_secret_manager_secret_version.debezium_db_password.secret == google_secret_manager_secret.debezium_db_password.id,
    false)
    error_message = "[secrets] Debezium's DB_PASSWORD must come from its Secret Manager secret."
  }

  assert {
    condition     = google_sql_user.debezium.password == null && google_secret_manager_secret_version.debezium_db_password.secret_data == null && google_sql_user.debezium.password_wo_version == var.debezium_password_version
    error_message = "[secrets] the Debezium password must be written with write-only arguments (password_wo, secret_data_wo), never into the plan or state."
  }

  # --- The way into the VPC: the tools' jobs ---------------------------------------------------------

  assert {
    condition = alltrue([for j in concat(google_cloud_run_v2_job.tools, google_cloud_run_v2_job.db_setup) : try(
      j.template[0].template[0].vpc_access[0].egress == "PRIVATE_RANGES_ONLY" &&
      j.template[0].template[0].vpc_access[0].network_interfaces[0].network == google_compute_network.vpc[0].id &&
      j.template[0].template[0].vpc_access[0].network_interfaces[0].subnetwork == google_compute_subnetwork.run[0].id,
    false)]) && length(google_cloud_run_v2_job.tools) == 1 && length(google_cloud_run_v2_job.db_setup) == 1
    error_message = "[private-ip] the tools' jobs must reach the private IPs through Direct VPC egress on the module's subnet."
  }

  assert {
    condition = (google_cloud_run_v2_job.tools[0].template[0].template[0].service_account == google_service_account.tools[0].email &&
      google_cloud_run_v2_job.db_setup[0].template[0].template[0].service_account == google_service_account.db_setup[0].email &&
    length(toset([google_service_account.tools[0].email, google_service_account.db_setup[0].email, google_service_account.function.email, google_service_account.debezium.email, google_service_account.build.email, google_service_account.push.email])) == 6)
    error_message = "[least-privilege] the operator job and the database setup job must each run as a service account of their own."
  }

  assert {
    condition = (toset([for g in google_secret_manager_secret_iam_member.tools_secrets : g.secret_id]) == toset([google_secret_manager_secret.redis_auth.id, google_secret_manager_secret.redis_ca.id, google_secret_manager_secret.admin_db_password.id, google_secret_manager_secret.cloudsql_ca.id]) &&
      alltrue([for g in google_secret_manager_secret_iam_member.tools_secrets : g.member == google_service_account.tools[0].member && g.role == "roles/secretmanager.secretAccessor"]) &&
      toset([for g in google_secret_manager_secret_iam_member.db_setup_secrets : g.secret_id]) == toset([google_secret_manager_secret.admin_db_password.id, google_secret_manager_secret.cloudsql_ca.id]) &&
    alltrue([for g in google_secret_manager_secret_iam_member.db_setup_secrets : g.member == google_service_account.db_setup[0].member && g.role == "roles/secretmanager.secretAccessor"]))
    error_message = "[least-privilege] the operator job may read Redis's and the admin user's secrets and the server CA only; the database setup job the admin user's password and the server CA only."
  }

  assert {
    condition = (google_pubsub_subscription_iam_member.tools_dead_letter[0].subscription == google_pubsub_subscription.dead_letter.id &&
      google_pubsub_subscription_iam_member.tools_dead_letter[0].role == "roles/pubsub.subscriber" &&
      google_pubsub_subscription_iam_member.tools_dead_letter[0].member == google_service_account.tools[0].member &&
      toset([for g in google_pubsub_topic_iam_member.tools_replay : g.topic]) == toset([for t in google_pubsub_topic.table : t.id]) &&
    alltrue([for g in google_pubsub_topic_iam_member.tools_replay : g.member == google_service_account.tools[0].member && g.role == "roles/pubsub.publisher"]))
    error_message = "[least-privilege] the operator job may pull the dead-letter subscription and publish to the table topics (dlq replay), nothing else in Pub/Sub."
  }

  assert {
    condition = (google_storage_bucket_iam_member.tools_work[0].bucket == google_storage_bucket.tools[0].name &&
      google_storage_bucket_iam_member.tools_work[0].role == "roles/storage.objectUser" &&
      google_storage_bucket_iam_member.tools_work[0].member == google_service_account.tools[0].member &&
    google_storage_bucket.tools[0].public_access_prevention == "enforced" && google_storage_bucket.tools[0].uniform_bucket_level_access == true)
    error_message = "[least-privilege] the operator job may use the objects of its own working bucket only, and the bucket is never public."
  }

  assert {
    condition = (toset([for g in google_cloud_run_v2_job_iam_member.operators : g.member]) == toset(var.operators) &&
    alltrue([for g in google_cloud_run_v2_job_iam_member.operators : g.role == "roles/run.jobsExecutorWithOverrides" && g.name == google_cloud_run_v2_job.tools[0].name]))
    error_message = "[least-privilege] only the operators may run the operator job with their own arguments, on that job only."
  }

  assert {
    condition = alltrue(flatten([for j in concat(google_cloud_run_v2_job.tools, google_cloud_run_v2_job.db_setup) :
      [for e in j.template[0].template[0].containers[0].env : e.value == null && length(e.value_source) == 1 if can(regex("(?i)password|secret|token|auth", e.name))]])) && (
      one([for e in google_cloud_run_v2_job.tools[0].template[0].template[0].containers[0].env : e.value_source[0].secret_key_ref[0].secret if e.name == "MYSQL_PASSWORD"]) == google_secret_manager_secret.admin_db_password.secret_id &&
      one([for e in google_cloud_run_v2_job.db_setup[0].template[0].template[0].containers[0].env : e.value_source[0].secret_key_ref[0].secret if e.name == "MYSQL_PASSWORD"]) == google_secret_manager_secret.admin_db_password.secret_id &&
    one([for e in google_cloud_run_v2_job.tools[0].template[0].template[0].containers[0].env : e.value_source[0].secret_key_ref[0].secret if e.name == "REDIS_PASSWORD"]) == google_secret_manager_secret.redis_auth.secret_id)
    error_message = "[secrets] the tools' jobs must take the admin password and the Redis AUTH string from Secret Manager, never as plain values."
  }

  assert {
    condition     = google_sql_user.admin.password == null && google_secret_manager_secret_version.admin_db_password.secret_data == null && google_sql_user.admin.password_wo_version == var.admin_password_version
    error_message = "[secrets] the admin password must be written with write-only arguments (password_wo, secret_data_wo), never into the plan or state."
  }
}
