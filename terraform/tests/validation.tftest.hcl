# Bad inputs are refused by the variables' own validation, before anything is planned, with a message
# that names the input, says what it accepts and shows the value given (variables.tf). expect_failures
# passes only if every variable listed fails its validation; a failure of anything not listed fails the
# run. The first run gives one bad value to each of the independent inputs at once; the others cover the
# validations that compare inputs with each other, and inputs with more than one validation.

mock_provider "google" {
  override_during = plan
  source          = "./tests/mocks"
}

variables {
  project_id     = "my-project"
  tables         = ["shop.orders", "shop.customers"]
  function_image = "europe-west1-docker.pkg.dev/my-project/cloudsql-cache/function:b1"
  debezium_image = "europe-west1-docker.pkg.dev/my-project/cloudsql-cache/debezium-server:b1"
  tools_image    = "europe-west1-docker.pkg.dev/my-project/cloudsql-cache/tools:b1"
}

run "one_bad_value_each" {
  command = plan

  variables {
    project_id                          = "My Project"
    region                              = "europe-west1-b"
    name_prefix                         = "1cache"
    labels                              = { Team = "data" }
    network_name                        = "Prod_VPC"
    subnet_name                         = "-run"
    subnet_cidr                         = "10.10.0.0/28"
    private_service_range_address       = "8.8.8.0"
    private_service_range_prefix_length = 28
    cloudsql_database_version           = "POSTGRES_16"
    cloudsql_tier                       = "n1-standard-1"
    cloudsql_edition                    = "STANDARD"
    cloudsql_availability_type          = "MULTI_REGIONAL"
    version_epoch                       = -1
    tombstone_ttl                       = "7d"
    apply_timeout                       = "10"
    redis_timeout                       = "1 s"
    max_body_bytes                      = -5
    function_image                      = "function"
    debezium_image                      = "debezium server:b1"
    function_min_instances              = -1
    function_concurrency                = 0
    function_cpu                        = "0.5"
    function_memory                     = "512MB"
    topic_prefix                        = "goog-cache"
    debezium_server_id                  = 0
    debezium_db_user                    = "debezium-user"
    debezium_password_version           = 0
    snapshot_mode                       = "always"
    snapshot_locking_mode               = "table"
    heartbeat_interval_ms               = 100
    debezium_cpu                        = "3"
    debezium_memory                     = "2G"
    redis_tier                          = "STANDARD"
    redis_memory_size_gb                = 500
    redis_version                       = "REDIS_5_0"
    redis_maxmemory_policy              = "lru"
    ack_deadline_seconds                = 5
    max_delivery_attempts               = 3
    retry_minimum_backoff               = "5"
    message_retention_duration          = "7d"
    notification_emails                 = ["oncall"]
    backlog_age_alert_seconds           = 0
    replication_lag_alert_ms            = -1
    apply_error_alert_per_second        = -1
    redis_wait_timeout                  = "half a second"
    redis_watch_interval                = "5"
    repair_seek_margin                  = "10"
    redis_persistence_mode              = "AOF"
    redis_rdb_snapshot_period           = "HOURLY"
    stale_alert_per_second              = -1
  }

  expect_failures = [
    var.redis_wait_timeout,
    var.redis_watch_interval,
    var.repair_seek_margin,
    var.redis_persistence_mode,
    var.redis_rdb_snapshot_period,
    var.stale_alert_per_second,
    var.project_id,
    var.region,
    var.name_prefix,
    var.labels,
    var.network_name,
    var.subnet_name,
    var.subnet_cidr,
    var.private_service_range_address,
    var.private_service_range_prefix_length,
    var.cloudsql_database_version,
    var.cloudsql_tier,
    var.cloudsql_edition,
    var.cloudsql_availability_type,
    var.version_epoch,
    var.tombstone_ttl,
    var.apply_timeout,
    var.redis_timeout,
    var.max_body_bytes,
    var.function_image,
    var.debezium_image,
    var.function_min_instances,
    var.function_concurrency,
    var.function_cpu,
    var.function_memory,
    var.topic_prefix,
    var.debezium_server_id,
    var.debezium_db_user,
    var.debezium_password_version,
    var.snapshot_mode,
    var.snapshot_locking_mode,
    var.heartbeat_interval_ms,
    var.debezium_cpu,
    var.debezium_memory,
    var.redis_tier,
    var.redis_memory_size_gb,
    var.redis_version,
    var.redis_maxmemory_policy,
    var.ack_deadline_seconds,
    var.max_delivery_attempts,
    var.retry_minimum_backoff,
    var.message_retention_duration,
    var.notification_emails,
    var.backlog_age_alert_seconds,
    var.replication_lag_alert_ms,
    var.apply_error_alert_per_second,
  ]
}

run "more_bad_values" {
  command = plan

  variables {
    subnet_cidr                = "not-a-cidr"
    retry_maximum_backoff      = "700s"
    message_retention_duration = "700000s"
    function_max_instances     = 0
    function_min_instances     = 0
  }

  expect_failures = [var.subnet_cidr, var.retry_maximum_backoff, var.message_retention_duration, var.function_max_instances]
}

run "no_tables" {
  command = plan
  variables {
    tables = []
  }
  expect_failures = [var.tables]
}

run "table_without_database" {
  command = plan
  variables {
    tables = ["orders"]
  }
  expect_failures = [var.tables]
}

run "table_twice" {
  command = plan
  variables {
    tables = ["shop.orders", "shop.orders"]
  }
  expect_failures = [var.tables]
}

run "existing_instance_not_named" {
  command = plan
  variables {
    create_cloudsql_instance = false
  }
  expect_failures = [var.existing_cloudsql_instance]
}

run "existing_instance_named_but_not_used" {
  command = plan
  variables {
    existing_cloudsql_instance = "prod-mysql"
  }
  expect_failures = [var.existing_cloudsql_instance]
}

run "settings_for_tables_not_captured" {
  command = plan
  variables {
    exclude_columns = ["billing.invoices.card_number"]
    key_templates   = { "billing.invoices" = "inv:{id}" }
  }
  expect_failures = [var.exclude_columns, var.key_templates]
}

run "malformed_table_settings" {
  command = plan
  variables {
    exclude_columns = ["shop.customers"]
    key_templates   = { "shop.orders" = "order:{id},{sku}" }
  }
  expect_failures = [var.exclude_columns, var.key_templates]
}

# Removed: a value is refused with a message pointing at the README.
run "version_columns_removed" {
  command = plan
  variables {
    version_columns = { "shop.orders" = "updated_at" }
  }
  expect_failures = [var.version_columns]
}

run "empty_key_template" {
  command = plan
  variables {
    key_templates = { "shop.orders" = "" }
  }
  expect_failures = [var.key_templates]
}

run "max_instances_below_min" {
  command = plan
  variables {
    function_min_instances = 5
    function_max_instances = 2
  }
  expect_failures = [var.function_max_instances]
}

run "maximum_backoff_below_minimum" {
  command = plan
  variables {
    retry_minimum_backoff = "60s"
    retry_maximum_backoff = "30s"
  }
  expect_failures = [var.retry_maximum_backoff]
}

run "state_database_is_captured" {
  command = plan
  variables {
    debezium_state_database = "shop"
  }
  expect_failures = [var.debezium_state_database]
}

run "retention_beyond_the_edition" {
  command = plan
  variables {
    cloudsql_edition      = "ENTERPRISE_PLUS"
    cloudsql_tier         = "db-perf-optimized-N-4"
    binlog_retention_days = 36
  }
  expect_failures = [var.binlog_retention_days]
}

# (binlog_retention_days depends on cloudsql_edition, which one_bad_value_each makes invalid too.)
run "retention_of_enterprise_plus_on_enterprise" {
  command = plan
  variables {
    binlog_retention_days = 35
  }
  expect_failures = [var.binlog_retention_days]
}

run "bad_operations_settings" {
  command = plan
  variables {
    debezium_instances = 2
    operators          = ["allUsers", "domain:example.com"]
    admin_db_user      = "debezium"
    tools_timeout      = "1d"
  }
  expect_failures = [var.debezium_instances, var.operators, var.admin_db_user, var.tools_timeout]
}

run "no_tools_image_for_the_jobs" {
  command = plan
  variables {
    tools_image     = ""
    operator_access = true
  }
  expect_failures = [var.tools_image]
}

run "bad_cluster_engine_settings" {
  command = plan
  variables {
    redis_engine        = "memcached"
    redis_replica_count = 3
    valkey_version      = "VALKEY_7_0"
    psc_subnet_name     = "cloudsql-cache-run"
    psc_subnet_cidr     = "8.8.8.0/28"
  }
  expect_failures = [var.redis_engine, var.redis_replica_count, var.valkey_version, var.psc_subnet_name, var.psc_subnet_cidr]
}

# The CUSTOM_ node types are Valkey's only; a cluster of 200 shards with 2 replicas is 600 nodes.
run "redis_cluster_with_a_valkey_node_type" {
  command = plan
  variables {
    redis_engine        = "redis_cluster"
    redis_node_type     = "CUSTOM_MINI"
    redis_shard_count   = 200
    redis_replica_count = 2
  }
  expect_failures = [var.redis_node_type, var.redis_shard_count]
}

run "fractional_shards" {
  command = plan
  variables {
    redis_engine      = "valkey"
    redis_shard_count = 2.5
  }
  expect_failures = [var.redis_shard_count]
}

# Memorystore's basic tier has no replica to wait for.
run "redis_wait_needs_a_replica" {
  command = plan

  variables {
    redis_tier          = "BASIC"
    redis_wait_replicas = 1
  }

  expect_failures = [var.redis_wait_replicas]
}

run "redis_wait_at_most_one_replica" {
  command = plan

  variables {
    redis_wait_replicas = 2
  }

  expect_failures = [var.redis_wait_replicas]
}

# A cluster without replicas has none to wait for.
run "redis_wait_needs_a_cluster_replica" {
  command = plan

  variables {
    redis_engine        = "redis_cluster"
    redis_replica_count = 0
    redis_wait_replicas = 1
  }

  expect_failures = [var.redis_wait_replicas]
}
