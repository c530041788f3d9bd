# A plan for each supported shape of inputs, with what that shape changes asserted on the planned
# values. plan_test.go also holds the plan of every run here to the module-wide properties (no basic
# role, no public member, labels, project on every resource). A new input that changes the shape of the
# deployment (another engine, an access path, ordering off) gets a run here.

mock_provider "google" {
  override_during = plan
  source          = "./tests/mocks"
}

variables {
  project_id     = "my-project"
  tables         = ["shop.orders"]
  function_image = "europe-west1-docker.pkg.dev/my-project/cloudsql-cache/function:b1"
  debezium_image = "europe-west1-docker.pkg.dev/my-project/cloudsql-cache/debezium-server:b1"
  tools_image    = "europe-west1-docker.pkg.dev/my-project/cloudsql-cache/tools:b1"
}

# Only the required inputs: a new VPC, private services access and Cloud SQL instance.
run "minimal" {
  command = plan

  assert {
    condition     = length(google_compute_network.vpc) == 1 && length(google_compute_subnetwork.run) == 1 && length(google_service_networking_connection.private_services) == 1
    error_message = "A minimal plan creates the VPC, its subnet and the private services access peering."
  }

  assert {
    condition     = length(google_sql_database_instance.source) == 1 && google_sql_database_instance.source[0].name == "cloudsql-cache-mysql" && google_sql_database_instance.source[0].deletion_protection == true
    error_message = "A minimal plan creates one Cloud SQL instance, protected from deletion."
  }

  assert {
    condition = (google_sql_database_instance.source[0].settings[0].backup_configuration[0].binary_log_enabled == true &&
      contains([for f in google_sql_database_instance.source[0].settings[0].database_flags : "${f.name}=${f.value}"], "binlog_row_image=full") &&
    google_sql_database_instance.source[0].settings[0].backup_configuration[0].transaction_log_retention_days == 7)
    error_message = "The created instance must log binlogs with full row images, kept binlog_retention_days (Debezium reads them)."
  }

  assert {
    condition     = one([for e in google_cloud_run_v2_worker_pool.debezium.template[0].containers[0].env : e.value if e.name == "DB_HOST"]) == google_sql_database_instance.source[0].private_ip_address
    error_message = "Debezium must connect to the created instance's private IP."
  }

  assert {
    condition     = google_cloud_run_v2_worker_pool.debezium.scaling[0].scaling_mode == "MANUAL" && google_cloud_run_v2_worker_pool.debezium.scaling[0].manual_instance_count == 1
    error_message = "Exactly one Debezium instance per source (MANUAL scaling, one instance)."
  }

  assert {
    condition     = keys(output.table_topics) == ["shop.orders"] && output.table_topics["shop.orders"] == google_pubsub_topic.table["shop.orders"].id && google_pubsub_topic.table["shop.orders"].name == "cloudsql-cache.shop.orders"
    error_message = "Each table's topic is <topic_prefix>.<db>.<table>, the name Debezium publishes to."
  }

  assert {
    condition     = google_pubsub_topic.heartbeat.name == "debezium-heartbeat.cloudsql-cache"
    error_message = "The heartbeat topic must be Debezium's <topic.heartbeat.prefix>.<topic.prefix>."
  }

  assert {
    condition     = output.redis_host == format("%s:%d", google_redis_instance.cache[0].host, google_redis_instance.cache[0].port) && output.cloudsql_instance == "cloudsql-cache-mysql"
    error_message = "The outputs name the created Redis endpoint and Cloud SQL instance."
  }
}

# The basic tier has no replica: nothing to wait for. Repair off: detection only, and acknowledged
# messages are not retained.
run "basic_tier_without_repair" {
  command = plan

  variables {
    redis_tier             = "BASIC"
    repair_by_seek         = false
    redis_persistence_mode = "DISABLED"
  }

  assert {
    condition     = one([for e in google_cloud_run_v2_service.function.template[0].containers[0].env : e.value if e.name == "REDIS_WAIT_REPLICAS"]) == "0" && one([for e in google_cloud_run_v2_service.function.template[0].containers[0].env : e.value if e.name == "REPAIR_SUBSCRIPTIONS"]) == null
    error_message = "BASIC waits for no replica; repair_by_seek = false gives the function no subscription to seek."
  }

  assert {
    condition     = alltrue([for s in google_pubsub_subscription.push : s.retain_acked_messages == false]) && length(google_pubsub_subscription_iam_member.function_seek) == 0
    error_message = "Without repair the subscriptions keep no acknowledged message and the function may not seek them."
  }

  assert {
    condition     = alltrue([for t in google_pubsub_topic.table : t.message_retention_duration == null]) && google_pubsub_topic.schema_changes.message_retention_duration == null && output.topic_message_retention_duration == null
    error_message = "Without repair the topics keep no messages (nothing to seek for)."
  }

  assert {
    condition     = google_redis_instance.cache[0].persistence_config[0].persistence_mode == "DISABLED" && google_redis_instance.cache[0].persistence_config[0].rdb_snapshot_period == null
    error_message = "redis_persistence_mode DISABLED sets no snapshot period."
  }
}

# Capture an existing instance on an existing VPC that already has private services access.
run "existing_instance" {
  command = plan

  variables {
    create_cloudsql_instance      = false
    existing_cloudsql_instance    = "prod-mysql"
    create_network                = false
    network_name                  = "prod-vpc"
    subnet_name                   = "prod-run-egress"
    create_private_service_access = false
  }

  assert {
    condition     = length(google_sql_database_instance.source) == 0 && length(google_compute_network.vpc) == 0 && length(google_compute_subnetwork.run) == 0 && length(google_service_networking_connection.private_services) == 0 && length(google_compute_global_address.private_services) == 0
    error_message = "With an existing instance and VPC, no instance, network or peering is created."
  }

  assert {
    condition     = google_sql_user.debezium.instance == "prod-mysql" && google_sql_database.debezium_state.instance == "prod-mysql" && output.cloudsql_instance == "prod-mysql"
    error_message = "The Debezium user and state database go on the existing instance."
  }

  assert {
    condition     = one([for e in google_cloud_run_v2_worker_pool.debezium.template[0].containers[0].env : e.value if e.name == "DB_HOST"]) == data.google_sql_database_instance.existing[0].private_ip_address && output.cloudsql_private_ip == "10.20.0.3"
    error_message = "Debezium must connect to the existing instance's private IP."
  }

  assert {
    condition = (google_redis_instance.cache[0].authorized_network == data.google_compute_network.existing[0].id &&
      google_cloud_run_v2_service.function.template[0].vpc_access[0].network_interfaces[0].subnetwork == data.google_compute_subnetwork.existing[0].id &&
    google_cloud_run_v2_worker_pool.debezium.template[0].vpc_access[0].network_interfaces[0].network == data.google_compute_network.existing[0].id)
    error_message = "Redis, the function and Debezium must use the existing VPC and subnet."
  }
}

# An existing instance without a private IP cannot be reached from the VPC: the plan must stop and say so.
run "existing_instance_without_private_ip" {
  command = plan

  variables {
    create_cloudsql_instance   = false
    existing_cloudsql_instance = "public-only-mysql"
  }

  override_data {
    target = data.google_sql_database_instance.existing
    values = {
      private_ip_address = ""
    }
  }

  expect_failures = [data.google_sql_database_instance.existing]
}

# Several databases and tables, with per-table key templates and excluded columns.
run "tables_with_key_templates" {
  command = plan

  variables {
    tables          = ["shop.orders", "shop.customers", "billing.invoices"]
    key_template    = "{db}:{table}:{pk}"
    key_templates   = { "shop.orders" = "order:{id}", "billing.invoices" = "inv:{year}:{number}" }
    exclude_columns = ["shop.customers.password_hash", "shop.customers.ssn"]
  }

  assert {
    condition     = toset(keys(google_pubsub_subscription.push)) == toset(concat(var.tables, ["schema_changes"])) && toset([for s in google_pubsub_subscription.push : s.name]) == toset(["cloudsql-cache.shop.orders.apply", "cloudsql-cache.shop.customers.apply", "cloudsql-cache.billing.invoices.apply", "cloudsql-cache.apply"])
    error_message = "Each table gets its own topic and push subscription <topic>.apply, and so does the schema-change topic (named topic_prefix)."
  }

  assert {
    condition = ({ for e in google_cloud_run_v2_service.function.template[0].containers[0].env : e.name => e.value if e.value != null } == {
      APPLY_TIMEOUT         = "10s"
      CACHE_EXCLUDE_COLUMNS = "shop.customers.password_hash,shop.customers.ssn"
      CACHE_KEY_TEMPLATE    = "{db}:{table}:{pk}"
      CACHE_KEY_TEMPLATES   = "billing.invoices=inv:{year}:{number},shop.orders=order:{id}"
      CACHE_TABLES          = "shop.orders,shop.customers,billing.invoices"
      CACHE_TOMBSTONE_TTL   = "168h"
      CACHE_VERSION_EPOCH   = "0"
      DEAD_LETTER_TOPIC     = google_pubsub_topic.dead_letter.id
      REDIS_ADDR            = format("%s:%d", google_redis_instance.cache[0].host, google_redis_instance.cache[0].port)
      REDIS_CA_FILE         = "/etc/cloudsql-cache/redis-ca/ca.pem"
      REDIS_POOL_SIZE       = "82"
      REDIS_TIMEOUT         = "1s"
      REDIS_TLS             = "true"
      REDIS_WAIT_REPLICAS   = "1"
      REDIS_WAIT_TIMEOUT    = "500ms"
      REDIS_WATCH_INTERVAL  = "5s"
      REPAIR_SEEK_MARGIN    = "10m"
      REPAIR_SEEK_MAX       = "94205s"
      REPAIR_SUBSCRIPTIONS  = "projects/my-project/subscriptions/cloudsql-cache.billing.invoices.apply,projects/my-project/subscriptions/cloudsql-cache.shop.customers.apply,projects/my-project/subscriptions/cloudsql-cache.shop.orders.apply,projects/my-project/subscriptions/cloudsql-cache.apply"
    })
    error_message = "The function's environment must carry the tables, key templates and excluded columns as its CACHE_* variables, wait for the standard tier's replica and repair through every push subscription."
  }

  assert {
    condition = ({ for e in google_cloud_run_v2_worker_pool.debezium.template[0].containers[0].env : e.name => e.value if contains(["DATABASE_INCLUDE_LIST", "TABLE_INCLUDE_LIST", "COLUMN_EXCLUDE_LIST"], e.name) } == {
      DATABASE_INCLUDE_LIST = "shop,billing"
      TABLE_INCLUDE_LIST    = "shop\\.orders,shop\\.customers,billing\\.invoices"
      COLUMN_EXCLUDE_LIST   = "shop\\.customers\\.password_hash,shop\\.customers\\.ssn"
    })
    error_message = "Debezium must capture exactly the tables' databases, the tables and the excluded columns (dots escaped: Debezium reads regular expressions)."
  }
}

# The cheaper shape: a zonal instance, Basic Redis, no deletion protection (a test project), with labels
# and alerts by e-mail; and the token creator grant older projects need.
run "small_with_labels_and_alerts" {
  command = plan

  variables {
    cloudsql_availability_type   = "ZONAL"
    redis_tier                   = "BASIC"
    redis_memory_size_gb         = 1
    deletion_protection          = false
    cloudsql_deletion_protection = false
    labels                       = { team = "data", env = "test" }
    notification_emails          = ["oncall@example.com", "dba@example.com"]
    grant_pubsub_token_creator   = true
  }

  assert {
    condition     = google_sql_database_instance.source[0].settings[0].availability_type == "ZONAL" && google_redis_instance.cache[0].tier == "BASIC" && google_redis_instance.cache[0].memory_size_gb == 1
    error_message = "The sizes given must reach the instances."
  }

  assert {
    condition     = google_redis_instance.cache[0].deletion_protection == false && google_sql_database_instance.source[0].deletion_protection == false && google_sql_database_instance.source[0].settings[0].deletion_protection_enabled == false && google_cloud_run_v2_service.function.deletion_protection == false
    error_message = "deletion_protection = false and cloudsql_deletion_protection = false must lift every protection (tear-down)."
  }

  assert {
    condition     = google_cloud_run_v2_service.function.labels == tomap({ app = "cloudsql-cache", team = "data", env = "test" }) && google_sql_database_instance.source[0].settings[0].user_labels == tomap({ app = "cloudsql-cache", team = "data", env = "test" })
    error_message = "labels must be added to app = cloudsql-cache on labelled resources."
  }

  assert {
    condition     = length(google_monitoring_notification_channel.email) == 2 && alltrue([for p in [google_monitoring_alert_policy.backlog_age, google_monitoring_alert_policy.debezium_down, google_monitoring_alert_policy.replication_lag] : toset(p.notification_channels) == toset([for c in google_monitoring_notification_channel.email : c.id])])
    error_message = "Every alert policy must notify every address in notification_emails."
  }

  assert {
    condition     = try(google_service_account_iam_member.pubsub_token_creator[0].role == "roles/iam.serviceAccountTokenCreator" && google_service_account_iam_member.pubsub_token_creator[0].service_account_id == google_service_account.push.name && google_service_account_iam_member.pubsub_token_creator[0].member == "serviceAccount:service-123456789012@gcp-sa-pubsub.iam.gserviceaccount.com", false)
    error_message = "grant_pubsub_token_creator = true lets the Pub/Sub service agent mint tokens for the push identity, and nothing else."
  }
}

# By default there is no way into the VPC for operators (no job, service account or grant), and the
# database setup job narrows the Debezium user's grants to the captured databases.
run "operator_access_off" {
  command = plan

  assert {
    condition     = length(google_cloud_run_v2_job.tools) == 0 && length(google_service_account.tools) == 0 && length(google_secret_manager_secret_iam_member.tools_secrets) == 0 && length(google_pubsub_subscription_iam_member.tools_dead_letter) == 0 && length(google_pubsub_topic_iam_member.tools_replay) == 0 && length(google_cloud_run_v2_job_iam_member.operators) == 0 && length(google_storage_bucket.tools) == 0 && output.tools_job == null
    error_message = "operator_access is off by default: no operator job, no service account for it, no grant."
  }

  assert {
    condition = (length(google_cloud_run_v2_job.db_setup) == 1 &&
      google_cloud_run_v2_job.db_setup[0].template[0].template[0].containers[0].args == tolist(["grant-debezium", "-user", "debezium", "-state-database", "debezium_state", "-databases", "shop"]) &&
      google_cloud_run_v2_job.db_setup[0].template[0].template[0].containers[0].image == var.tools_image &&
      length(google_cloud_run_v2_job.db_setup[0].run_execution_token) == 16 &&
    one([for e in google_cloud_run_v2_job.db_setup[0].template[0].template[0].containers[0].env : e.value if e.name == "MYSQL_ADDR"]) == "${google_sql_database_instance.source[0].private_ip_address}:3306")
    error_message = "The database setup job runs cachectl grant-debezium for the captured databases against the instance's private IP, on every apply that changes what it grants."
  }

  assert {
    condition     = output.debezium_state_tables.offsets == "debezium_offsets" && output.debezium_state_tables.schema_history == "debezium_schema_history" && output.version_epoch == 0 && output.debezium_instances == 1
    error_message = "Epoch 0 keeps the state tables' names of the Debezium configuration template."
  }
}

# The way in, switched on: the tools image on the VPC with the function's Redis and table settings, the
# admin user, the dead-letter subscription, run by the operators only.
run "operator_access_on" {
  command = plan

  variables {
    operator_access = true
    operators       = ["group:oncall@example.com", "user:alice@example.com"]
    tables          = ["shop.orders", "shop.customers"]
  }

  assert {
    condition = (length(google_cloud_run_v2_job.tools) == 1 && google_cloud_run_v2_job.tools[0].name == "cloudsql-cache-tools" &&
      google_cloud_run_v2_job.tools[0].deletion_protection == false &&
      google_cloud_run_v2_job.tools[0].template[0].template[0].max_retries == 0 &&
    google_cloud_run_v2_job.tools[0].template[0].template[0].containers[0].image == var.tools_image)
    error_message = "operator_access creates the operator job from the tools image, not retried, and removable (switching it off deletes it)."
  }

  assert {
    condition = alltrue([for name, want in {
      REDIS_ADDR               = format("%s:%d", google_redis_instance.cache[0].host, google_redis_instance.cache[0].port)
      REDIS_TLS                = "true"
      CACHE_TABLES             = "shop.orders,shop.customers"
      MYSQL_ADDR               = "${google_sql_database_instance.source[0].private_ip_address}:3306"
      MYSQL_USER               = "cloudsql_cache_admin"
      DEAD_LETTER_SUBSCRIPTION = google_pubsub_subscription.dead_letter.id
      TOPIC_PREFIX             = "cloudsql-cache"
      PUBSUB_REGION            = "europe-west1"
      } : try(one([for e in google_cloud_run_v2_job.tools[0].template[0].template[0].containers[0].env : e.value if e.name == name]) == want, false)
    ]) && startswith(one([for e in google_cloud_run_v2_job.tools[0].template[0].template[0].containers[0].env : e.value if e.name == "MYSQL_CA_FILE"]), google_cloud_run_v2_job.tools[0].template[0].template[0].containers[0].volume_mounts[1].mount_path)
    error_message = "The operator job reaches Redis and the table policy as the function does, MySQL as the admin user over TLS verified against the mounted server CA, and the dead-letter subscription."
  }

  assert {
    condition     = length(google_cloud_run_v2_job_iam_member.operators) == 2 && output.tools_job == "cloudsql-cache-tools"
    error_message = "Each operator may run the job."
  }

  assert {
    condition = one([for v in google_cloud_run_v2_job.tools[0].template[0].template[0].volumes : v.gcs[0].bucket if v.name == "work"]) == google_storage_bucket.tools[0].name && contains(
    [for m in google_cloud_run_v2_job.tools[0].template[0].template[0].containers[0].volume_mounts : m.mount_path if m.name == "work"], "/work")
    error_message = "The operator job has its bucket at /work, where a verify checkpoint outlives the execution."
  }
}

# debezium_instances = 0 stops Debezium (the first step of a restore); a new version epoch gives it new,
# empty state tables, so it snapshots afresh, and gives the function and the tools the epoch.
run "debezium_stopped_in_a_new_epoch" {
  command = plan

  variables {
    debezium_instances = 0
    version_epoch      = 3
    operator_access    = true
  }

  assert {
    condition     = google_cloud_run_v2_worker_pool.debezium.scaling[0].manual_instance_count == 0
    error_message = "debezium_instances = 0 scales the worker pool to no instance."
  }

  assert {
    condition = (one([for e in google_cloud_run_v2_worker_pool.debezium.template[0].containers[0].env : e.value if e.name == "DEBEZIUM_SOURCE_OFFSET_STORAGE_JDBC_TABLE_NAME"]) == "debezium_offsets_epoch_3" &&
      one([for e in google_cloud_run_v2_worker_pool.debezium.template[0].containers[0].env : e.value if e.name == "DEBEZIUM_SOURCE_SCHEMA_HISTORY_INTERNAL_JDBC_TABLE_NAME"]) == "debezium_schema_history_epoch_3" &&
      one([for e in google_cloud_run_v2_service.function.template[0].containers[0].env : e.value if e.name == "CACHE_VERSION_EPOCH"]) == "3" &&
    one([for e in google_cloud_run_v2_job.tools[0].template[0].template[0].containers[0].env : e.value if e.name == "CACHE_VERSION_EPOCH"]) == "3")
    error_message = "A new version epoch gives Debezium the epoch's own offsets and schema history tables, and the function and the tools the epoch."
  }
}

# Grants narrowed by hand: no setup job, and no tools image needed. A locking snapshot mode adds LOCK
# TABLES to what the job grants.
run "grants_by_hand" {
  command = plan

  variables {
    narrow_debezium_grants = false
    tools_image            = ""
  }

  assert {
    condition     = length(google_cloud_run_v2_job.db_setup) == 0 && length(google_service_account.db_setup) == 0 && length(google_secret_manager_secret_iam_member.db_setup_secrets) == 0 && output.db_setup_job == null
    error_message = "narrow_debezium_grants = false creates no setup job."
  }
}

run "locking_snapshot_grants_lock_tables" {
  command = plan

  variables {
    snapshot_locking_mode = "minimal"
  }

  assert {
    condition     = contains(google_cloud_run_v2_job.db_setup[0].template[0].template[0].containers[0].args, "-lock-tables")
    error_message = "A locking snapshot mode needs LOCK TABLES on the captured databases."
  }
}

# Enterprise Plus keeps binary logs up to 35 days.
run "enterprise_plus_retention" {
  command = plan

  variables {
    cloudsql_edition      = "ENTERPRISE_PLUS"
    cloudsql_tier         = "db-perf-optimized-N-4"
    binlog_retention_days = 35
  }

  assert {
    condition     = google_sql_database_instance.source[0].settings[0].backup_configuration[0].transaction_log_retention_days == 35
    error_message = "An Enterprise Plus instance keeps 35 days of binary logs when asked."
  }
}

# Memorystore for Redis Cluster instead of the instance: PSC endpoints in their own subnet, IAM
# authentication, TLS with the cluster's CA; the function and the tools in cluster mode on the discovery
# endpoint, without an AUTH string.
run "redis_cluster_engine" {
  command = plan

  variables {
    redis_engine        = "redis_cluster"
    redis_shard_count   = 5
    redis_replica_count = 2
    redis_node_type     = "STANDARD_SMALL"
    operator_access     = true
  }

  assert {
    condition = (length(google_redis_instance.cache) == 0 && length(google_memorystore_instance.cache) == 0 && length(google_redis_cluster.cache) == 1 &&
      google_redis_cluster.cache[0].shard_count == 5 && google_redis_cluster.cache[0].replica_count == 2 && google_redis_cluster.cache[0].node_type == "REDIS_STANDARD_SMALL" &&
      google_redis_cluster.cache[0].psc_configs[0].network == google_compute_network.vpc[0].id &&
    google_redis_cluster.cache[0].redis_configs["maxmemory-policy"] == "noeviction")
    error_message = "redis_engine = redis_cluster creates one cluster of the shards, replicas and node type given (REDIS_ in front), on the VPC, never evicting, and no instance."
  }

  assert {
    condition = (google_redis_cluster.cache[0].authorization_mode == "AUTH_MODE_IAM_AUTH" && google_redis_cluster.cache[0].transit_encryption_mode == "TRANSIT_ENCRYPTION_MODE_SERVER_AUTHENTICATION" &&
    length(google_secret_manager_secret.redis_auth) == 0 && output.redis_auth_secret == null)
    error_message = "The cluster requires IAM authentication and TLS, and there is no AUTH string secret."
  }

  assert {
    condition = (length(google_compute_subnetwork.psc) == 1 && google_compute_subnetwork.psc[0].ip_cidr_range == "10.10.1.0/28" &&
      google_network_connectivity_service_connection_policy.redis[0].service_class == "gcp-memorystore-redis" &&
    google_network_connectivity_service_connection_policy.redis[0].psc_config[0].subnetworks == tolist([google_compute_subnetwork.psc[0].id]))
    error_message = "The PSC endpoints get a subnet of their own and a service connection policy of Redis Cluster's service class naming it."
  }

  assert {
    condition = alltrue([for name, want in {
      REDIS_MODE     = "cluster"
      REDIS_IAM_AUTH = "true"
      REDIS_ADDR     = "10.10.1.2:6379"
      REDIS_TLS      = "true"
      REDIS_CA_FILE  = "/etc/cloudsql-cache/redis-ca/ca.pem"
      # A change is acknowledged once a replica of the shard that took it holds it.
      REDIS_WAIT_REPLICAS = "1"
      } : one([for e in google_cloud_run_v2_service.function.template[0].containers[0].env : e.value if e.name == name]) == want]) && (
      length([for e in google_cloud_run_v2_service.function.template[0].containers[0].env : e if e.name == "REDIS_PASSWORD"]) == 0 &&
      one([for e in google_cloud_run_v2_job.tools[0].template[0].template[0].containers[0].env : e.value if e.name == "REDIS_MODE"]) == "cluster" &&
      one([for e in google_cloud_run_v2_job.tools[0].template[0].template[0].containers[0].env : e.value if e.name == "REDIS_IAM_AUTH"]) == "true" &&
    output.redis_host == "10.10.1.2:6379" && output.redis_mode == "cluster")
    error_message = "The function and the tools reach the cluster's discovery endpoint in cluster mode with TLS, without REDIS_PASSWORD; the outputs say so."
  }

  assert {
    condition = (toset([for m in google_project_iam_member.redis_connect : m.member]) == toset([google_service_account.function.member, google_service_account.tools[0].member]) &&
      alltrue([for m in google_project_iam_member.redis_connect : m.role == "roles/redis.dbConnectionUser"]) &&
      output.redis_connection_role == "roles/redis.dbConnectionUser" &&
    toset(keys(google_secret_manager_secret_iam_member.function_secrets)) == toset(["redis_ca"]))
    error_message = "The function and the tools may connect with IAM (roles/redis.dbConnectionUser), and read only the CA secret."
  }

  assert {
    condition     = strcontains(nonsensitive(google_secret_manager_secret_version.redis_ca.secret_data), "redis-cluster-ca")
    error_message = "The CA file is the cluster's managed server CA."
  }

  assert {
    condition     = strcontains(google_monitoring_alert_policy.redis_memory.conditions[0].condition_threshold[0].filter, "redis.googleapis.com/cluster/memory/maximum_utilization")
    error_message = "The memory alert watches the cluster's fullest node."
  }
}

# A cluster without replicas has none to wait for.
run "cluster_without_replicas_waits_for_none" {
  command = plan

  variables {
    redis_engine        = "valkey"
    redis_replica_count = 0
  }

  assert {
    condition     = one([for e in google_cloud_run_v2_service.function.template[0].containers[0].env : e.value if e.name == "REDIS_WAIT_REPLICAS"]) == "0"
    error_message = "A cluster engine with redis_replica_count 0 waits for no replica."
  }
}

# Memorystore for Valkey in cluster mode, in an existing network that already has a service connection
# policy: the module takes the discovery endpoint out of the auto-created ones.
run "valkey_engine" {
  command = plan

  variables {
    redis_engine                     = "valkey"
    redis_node_type                  = "CUSTOM_MINI"
    create_service_connection_policy = false
  }

  assert {
    condition = (length(google_redis_instance.cache) == 0 && length(google_redis_cluster.cache) == 0 && length(google_memorystore_instance.cache) == 1 &&
      google_memorystore_instance.cache[0].mode == "CLUSTER" && google_memorystore_instance.cache[0].engine_version == "VALKEY_8_0" &&
      google_memorystore_instance.cache[0].node_type == "CUSTOM_MINI" && google_memorystore_instance.cache[0].shard_count == 3 && google_memorystore_instance.cache[0].replica_count == 1 &&
      google_memorystore_instance.cache[0].authorization_mode == "IAM_AUTH" && google_memorystore_instance.cache[0].transit_encryption_mode == "SERVER_AUTHENTICATION" &&
    length(google_network_connectivity_service_connection_policy.redis) == 0)
    error_message = "redis_engine = valkey creates one Valkey instance in cluster mode with IAM authentication and TLS, and no policy when told one exists."
  }

  assert {
    condition = (one([for e in google_cloud_run_v2_service.function.template[0].containers[0].env : e.value if e.name == "REDIS_ADDR"]) == "10.10.1.4:6379" &&
      one([for e in google_cloud_run_v2_service.function.template[0].containers[0].env : e.value if e.name == "REDIS_MODE"]) == "cluster" &&
    contains(keys(google_project_service.apis), "memorystore.googleapis.com"))
    error_message = "The function reaches Valkey's discovery endpoint (not its primary one) in cluster mode; the Memorystore API is enabled."
  }

  assert {
    condition     = alltrue([for m in google_project_iam_member.redis_connect : m.role == "roles/memorystore.dbConnectionUser"]) && length(google_project_iam_member.redis_connect) == 1
    error_message = "Only the function may connect (no operator job), with Memorystore's connection role."
  }
}
