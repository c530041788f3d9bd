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
    condition     = output.redis_host == format("%s:%d", google_redis_instance.cache.host, google_redis_instance.cache.port) && output.cloudsql_instance == "cloudsql-cache-mysql"
    error_message = "The outputs name the created Redis endpoint and Cloud SQL instance."
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
    condition = (google_redis_instance.cache.authorized_network == data.google_compute_network.existing[0].id &&
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
      REDIS_ADDR            = format("%s:%d", google_redis_instance.cache.host, google_redis_instance.cache.port)
      REDIS_CA_FILE         = "/etc/cloudsql-cache/redis-ca/ca.pem"
      REDIS_TIMEOUT         = "1s"
      REDIS_TLS             = "true"
    })
    error_message = "The function's environment must carry the tables, key templates and excluded columns as its CACHE_* variables."
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
    condition     = google_sql_database_instance.source[0].settings[0].availability_type == "ZONAL" && google_redis_instance.cache.tier == "BASIC" && google_redis_instance.cache.memory_size_gb == 1
    error_message = "The sizes given must reach the instances."
  }

  assert {
    condition     = google_redis_instance.cache.deletion_protection == false && google_sql_database_instance.source[0].deletion_protection == false && google_sql_database_instance.source[0].settings[0].deletion_protection_enabled == false && google_cloud_run_v2_service.function.deletion_protection == false
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
