# Dashboard and alert policies. Platform metrics (Pub/Sub, Cloud Run, Memorystore) exist from the first
# apply. The function's own OpenTelemetry metrics (cloudsql_cache.*) appear once it exports them over
# OTLP to the Telemetry API, which stores them as Managed Service for Prometheus metrics
# (prometheus.googleapis.com/<name>/<kind>, resource prometheus_target); their conditions are PromQL with
# metric validation disabled, so the policies can be created before the first data point.

resource "google_monitoring_notification_channel" "email" {
  for_each = toset(var.notification_emails)

  project      = var.project_id
  user_labels  = local.labels
  display_name = "cloudsql-cache: ${each.value}"
  type         = "email"
  labels = {
    email_address = each.value
  }

  depends_on = [google_project_service.apis]
}

locals {
  notification_channels = [for c in google_monitoring_notification_channel.email : c.id]

  push_subscription_filter = "resource.type = \"pubsub_subscription\" AND resource.labels.subscription_id = starts_with(\"${var.topic_prefix}.\")"
  function_revision_filter = "resource.type = \"cloud_run_revision\" AND resource.labels.service_name = \"${google_cloud_run_v2_service.function.name}\""

  # PromQL selectors of the function's metrics. The Telemetry API keeps OpenTelemetry's names, dots
  # included, so they are quoted inside the braces (PromQL's UTF-8 syntax); a histogram is read through
  # its _bucket series.
  promql_events     = "\"cloudsql_cache.events\""
  promql_lag_bucket = "\"cloudsql_cache.replication_lag_bucket\""
  promql_commit     = "\"cloudsql_cache.source.commit_time\""
  promql_redis_errs = "\"cloudsql_cache.redis.errors\""
  # The read path's metrics come from the services reading through readcache (its consistency sampler
  # on), not from the function: the tiles stay empty until such a service exports them.
  promql_consistency      = "\"cloudsql_cache.read.consistency\""
  promql_staleness_bucket = "\"cloudsql_cache.read.staleness_bucket\""
  promql_staleness_max    = "\"cloudsql_cache.read.staleness.max\""
  promql_losses           = "\"cloudsql_cache.redis.losses\""
  promql_restarts         = "\"cloudsql_cache.redis.restarts\""
  promql_repairs          = "\"cloudsql_cache.repairs\""

  runbook = "See the Operations section of terraform/README.md in the cloudsql-cache repository."

  # The cache's memory and evictions, by engine. The instance's ratio is of its one primary; the
  # clusters' maximum_utilization is of their fullest node, which is what matters with noeviction: a full
  # shard refuses the writes of its slots while the others still have room.
  redis_resource_filter = (
    local.redis_standalone ? "resource.type = \"redis_instance\" AND resource.labels.instance_id = \"${google_redis_instance.cache[0].id}\"" :
    var.redis_engine == "redis_cluster" ? "resource.type = \"redis.googleapis.com/Cluster\" AND resource.labels.cluster_id = \"${google_redis_cluster.cache[0].name}\"" :
    "resource.type = \"memorystore.googleapis.com/Instance\" AND resource.labels.instance_id = \"${google_memorystore_instance.cache[0].instance_id}\""
  )
  redis_memory_metric = {
    redis         = "redis.googleapis.com/stats/memory/usage_ratio"
    redis_cluster = "redis.googleapis.com/cluster/memory/maximum_utilization"
    valkey        = "memorystore.googleapis.com/instance/memory/maximum_utilization"
  }[var.redis_engine]
  redis_evictions_metric = {
    redis         = "redis.googleapis.com/stats/evicted_keys"
    redis_cluster = "redis.googleapis.com/cluster/stats/total_evicted_keys_count"
    valkey        = "memorystore.googleapis.com/instance/stats/total_evicted_keys_count"
  }[var.redis_engine]
  redis_memory_filter    = "${local.redis_resource_filter} AND metric.type = \"${local.redis_memory_metric}\""
  redis_evictions_filter = "${local.redis_resource_filter} AND metric.type = \"${local.redis_evictions_metric}\""
  redis_scale_hint       = local.redis_standalone ? "Scale redis_memory_size_gb (at most 300 GB; beyond, redis_engine = redis_cluster or valkey)." : "Add shards (redis_shard_count) or take a larger redis_node_type."
}

resource "google_monitoring_alert_policy" "backlog_age" {
  project               = var.project_id
  user_labels           = local.labels
  display_name          = "cloudsql-cache: change backlog too old"
  combiner              = "OR"
  severity              = "ERROR"
  notification_channels = local.notification_channels

  conditions {
    display_name = "Oldest unacknowledged change > ${var.backlog_age_alert_seconds}s"
    condition_threshold {
      filter          = "${local.push_subscription_filter} AND metric.type = \"pubsub.googleapis.com/subscription/oldest_unacked_message_age\""
      comparison      = "COMPARISON_GT"
      threshold_value = var.backlog_age_alert_seconds
      duration        = "120s"
      aggregations {
        alignment_period   = "60s"
        per_series_aligner = "ALIGN_MAX"
      }
      trigger {
        count = 1
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = "The cache is behind the database: the function is failing (check apply errors, Redis) or a key is blocked by an ordered message that keeps failing. ${local.runbook}"
  }
}

resource "google_monitoring_alert_policy" "dead_letters" {
  project               = var.project_id
  user_labels           = local.labels
  display_name          = "cloudsql-cache: changes dead-lettered"
  combiner              = "OR"
  severity              = "ERROR"
  notification_channels = local.notification_channels

  conditions {
    display_name = "Messages published to the dead-letter topic"
    condition_threshold {
      filter          = "resource.type = \"pubsub_topic\" AND resource.labels.topic_id = \"${google_pubsub_topic.dead_letter.name}\" AND metric.type = \"pubsub.googleapis.com/topic/send_message_operation_count\""
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "0s"
      aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_SUM"
        cross_series_reducer = "REDUCE_SUM"
      }
      trigger {
        count = 1
      }
    }
  }

  conditions {
    display_name = "Messages forwarded by a subscription's dead-letter policy"
    condition_threshold {
      filter          = "${local.push_subscription_filter} AND metric.type = \"pubsub.googleapis.com/subscription/dead_letter_message_count\""
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "0s"
      aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_SUM"
        cross_series_reducer = "REDUCE_SUM"
      }
      trigger {
        count = 1
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = "Rows were not applied to the cache. Inspect them on subscription ${google_pubsub_subscription.dead_letter.name} (attributes cloudsql_cache_reason, cloudsql_cache_ordering_key). ${local.runbook}"
  }
}

resource "google_monitoring_alert_policy" "apply_errors" {
  project               = var.project_id
  user_labels           = local.labels
  display_name          = "cloudsql-cache: apply errors (5xx)"
  combiner              = "OR"
  severity              = "ERROR"
  notification_channels = local.notification_channels

  conditions {
    display_name = "Function 5xx responses > ${var.apply_error_alert_per_second}/s"
    condition_threshold {
      filter          = "${local.function_revision_filter} AND metric.type = \"run.googleapis.com/request_count\" AND metric.labels.response_code_class = \"5xx\""
      comparison      = "COMPARISON_GT"
      threshold_value = var.apply_error_alert_per_second
      duration        = "300s"
      aggregations {
        alignment_period     = "60s"
        per_series_aligner   = "ALIGN_RATE"
        cross_series_reducer = "REDUCE_SUM"
      }
      trigger {
        count = 1
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = "Pub/Sub is retrying changes the function could not apply (Redis unreachable, full, or slow). ${local.runbook}"
  }
}

resource "google_monitoring_alert_policy" "apply_outcomes" {
  project               = var.project_id
  user_labels           = local.labels
  display_name          = "cloudsql-cache: retried or rejected changes (function metrics)"
  combiner              = "OR"
  severity              = "WARNING"
  notification_channels = local.notification_channels

  conditions {
    display_name = "cloudsql_cache.events with outcome retry or rejected"
    condition_prometheus_query_language {
      query                     = "sum by (table, outcome, reason) (rate({${local.promql_events}, outcome=~\"retry|rejected\"}[5m])) > 0"
      duration                  = "300s"
      evaluation_interval       = "60s"
      disable_metric_validation = true
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = "The function reports changes it had to retry or reject, by table and reason. ${local.runbook}"
  }
}

# Two different changes of one row under one version: a transaction written with
# binlog_transaction_compression while Debezium's transaction metadata is off. The later delivery is
# stored, but the cache can be wrong if the pair is ever replayed out of order.
resource "google_monitoring_alert_policy" "version_collisions" {
  project               = var.project_id
  user_labels           = local.labels
  display_name          = "cloudsql-cache: version collisions (function metrics)"
  combiner              = "OR"
  severity              = "ERROR"
  notification_channels = local.notification_channels

  conditions {
    display_name = "cloudsql_cache.events with reason version_collision"
    condition_prometheus_query_language {
      query                     = "sum by (table) (rate({${local.promql_events}, reason=\"version_collision\"}[5m])) > 0"
      duration                  = "60s"
      evaluation_interval       = "60s"
      disable_metric_validation = true
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = "Two different changes of one row carried the same version: a compressed transaction (binlog_transaction_compression=ON) while Debezium's provide.transaction.metadata is off. Turn the metadata back on (debezium-server/application.properties.tmpl ships it on) or compression off, then run verify on the table and repair what it reports (README: Guarantees). ${local.runbook}"
  }
}

resource "google_monitoring_alert_policy" "replication_lag" {
  project               = var.project_id
  user_labels           = local.labels
  display_name          = "cloudsql-cache: replication lag"
  combiner              = "OR"
  severity              = "ERROR"
  notification_channels = local.notification_channels

  conditions {
    display_name = "p99 commit-to-cache lag > ${var.replication_lag_alert_ms} ms"
    condition_prometheus_query_language {
      query                     = "histogram_quantile(0.99, sum by (le, table) (rate({${local.promql_lag_bucket}}[5m]))) > ${var.replication_lag_alert_ms}"
      duration                  = "300s"
      evaluation_interval       = "60s"
      disable_metric_validation = true
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = "Changes reach the cache late: Debezium is slow or restarting (snapshot?), or the backlog is growing. ${local.runbook}"
  }
}

resource "google_monitoring_alert_policy" "debezium_down" {
  project               = var.project_id
  user_labels           = local.labels
  display_name          = "cloudsql-cache: Debezium down"
  combiner              = "OR"
  severity              = "CRITICAL"
  notification_channels = local.notification_channels

  # Debezium publishes a heartbeat every heartbeat_interval_ms while it streams; silence means it is
  # not running, not connected to MySQL, or cannot publish.
  conditions {
    display_name = "No heartbeat published for 5 minutes"
    condition_absent {
      filter   = "resource.type = \"pubsub_topic\" AND resource.labels.topic_id = \"${google_pubsub_topic.heartbeat.name}\" AND metric.type = \"pubsub.googleapis.com/topic/send_message_operation_count\""
      duration = "300s"
      aggregations {
        alignment_period     = "60s"
        per_series_aligner   = "ALIGN_SUM"
        cross_series_reducer = "REDUCE_SUM"
      }
      trigger {
        count = 1
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = "No change can reach the cache. Check the logs of worker pool ${google_cloud_run_v2_worker_pool.debezium.name}. ${local.runbook}"
  }
}

resource "google_monitoring_alert_policy" "redis_memory" {
  project               = var.project_id
  user_labels           = local.labels
  display_name          = "cloudsql-cache: Redis memory nearly full"
  combiner              = "OR"
  severity              = "WARNING"
  notification_channels = local.notification_channels

  conditions {
    display_name = local.redis_standalone ? "Memory usage ratio > 85%" : "Fullest node's memory utilization > 85%"
    condition_threshold {
      filter          = local.redis_memory_filter
      comparison      = "COMPARISON_GT"
      threshold_value = 0.85
      duration        = "300s"
      aggregations {
        alignment_period   = "60s"
        per_series_aligner = "ALIGN_MAX"
      }
      trigger {
        count = 1
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = "maxmemory-policy is ${var.redis_maxmemory_policy}: at 100% writes fail and changes back up in Pub/Sub. ${local.redis_scale_hint} ${local.runbook}"
  }
}

# Redis lost writes (the function's loss watcher: a marker gone, a heartbeat gone back). The repair
# seeks the push subscriptions back (repair_by_seek); this says it happened, and what to check.
resource "google_monitoring_alert_policy" "redis_loss" {
  project               = var.project_id
  user_labels           = local.labels
  display_name          = "cloudsql-cache: Redis lost data (function metrics)"
  combiner              = "OR"
  severity              = "CRITICAL"
  notification_channels = local.notification_channels

  conditions {
    display_name = "cloudsql_cache.redis.losses"
    condition_prometheus_query_language {
      query                     = "sum by (extent) (increase({${local.promql_losses}}[10m])) > 0"
      duration                  = "0s"
      evaluation_interval       = "60s"
      disable_metric_validation = true
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = "Redis came back with less than it had acknowledged: extent total (restarted empty) or partial (from an older snapshot, or a replica missing writes). The function seeks the push subscriptions back past the loss (cloudsql_cache.repairs) and Pub/Sub delivers those changes again. After a total loss, rows unchanged for longer than the topics' retention (topic_message_retention_duration) are not replayed: reads fill them from the database; re-snapshot (README: Losses noticed and repaired) for a warm cache, then run verify. ${local.runbook}"
  }
}

resource "google_monitoring_alert_policy" "redis_restart" {
  project               = var.project_id
  user_labels           = local.labels
  display_name          = "cloudsql-cache: Redis restarted or failed over (function metrics)"
  combiner              = "OR"
  severity              = "WARNING"
  notification_channels = local.notification_channels

  conditions {
    display_name = "cloudsql_cache.redis.restarts"
    condition_prometheus_query_language {
      query                     = "sum by (kind) (increase({${local.promql_restarts}}[10m])) > 0"
      duration                  = "0s"
      evaluation_interval       = "60s"
      disable_metric_validation = true
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = "Another Redis process answers: a restart or a failover to the replica (kind). The function seeks the push subscriptions back past the last heartbeat that survived, so changes written after it are delivered again. ${local.runbook}"
  }
}

resource "google_monitoring_alert_policy" "repair_failed" {
  project               = var.project_id
  user_labels           = local.labels
  display_name          = "cloudsql-cache: repair after a Redis loss failed or incomplete (function metrics)"
  combiner              = "OR"
  severity              = "ERROR"
  notification_channels = local.notification_channels

  conditions {
    display_name = "cloudsql_cache.repairs with state failed"
    condition_prometheus_query_language {
      query                     = "sum by (reason) (increase({${local.promql_repairs}, state=\"failed\"}[10m])) > 0"
      duration                  = "0s"
      evaluation_interval       = "60s"
      disable_metric_validation = true
    }
  }

  # A loss that began before the oldest message the topics retain: the seek replayed only part of it
  # (after a total loss that only leaves rows uncached, which the Redis-lost-data alert already says).
  conditions {
    display_name = "cloudsql_cache.repairs with state beyond_retention"
    condition_prometheus_query_language {
      query                     = "sum by (reason) (increase({${local.promql_repairs}, state=\"beyond_retention\", reason!=\"total_loss\"}[10m])) > 0"
      duration                  = "0s"
      evaluation_interval       = "60s"
      disable_metric_validation = true
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = "The function could not seek the push subscriptions back after a Redis loss (it retries every check; its ERROR log line names the subscription and the error, often a missing roles/pubsub.subscriber). Seek them by hand to the time in the log (gcloud pubsub subscriptions seek --time), then run verify. State beyond_retention: the loss began before the oldest message the topics retain (topic_message_retention_duration; ERROR log line \"repair incomplete\"), so rows changed in between may be cached at an older version: re-snapshot the tables (README: Redis failover, restart and data loss), then run verify. ${local.runbook}"
  }
}

# Changes refused as stale, sustained: a few are normal (redeliveries, replays, a repair's seek); many
# mean the changes arriving are older than what is cached: binlog coordinates that went backwards (a
# restored or replaced database without a new version_epoch).
resource "google_monitoring_alert_policy" "stale_rise" {
  project               = var.project_id
  user_labels           = local.labels
  display_name          = "cloudsql-cache: stale changes rising (function metrics)"
  combiner              = "OR"
  severity              = "WARNING"
  notification_channels = local.notification_channels

  conditions {
    display_name = "cloudsql_cache.events with outcome stale > ${var.stale_alert_per_second}/s"
    condition_prometheus_query_language {
      query                     = "sum(rate({${local.promql_events}, outcome=\"stale\"}[5m])) > ${var.stale_alert_per_second}"
      duration                  = "600s"
      evaluation_interval       = "60s"
      disable_metric_validation = true
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = "Many changes arrive older than what the cache holds. Right after a repair's seek this is the replay and passes. Otherwise the source's binlog coordinates went back (a restored, cloned or replaced database): run the restore procedure with a new version_epoch (README: A new version epoch). ${local.runbook}"
  }
}

resource "google_monitoring_dashboard" "main" {
  project = var.project_id
  dashboard_json = jsonencode({
    displayName = "cloudsql-cache"
    mosaicLayout = {
      columns = 12
      tiles = [
        {
          xPos = 0, yPos = 0, width = 6, height = 4
          widget = {
            title = "Changes by outcome (per second)"
            xyChart = {
              dataSets = [{
                plotType        = "STACKED_AREA"
                timeSeriesQuery = { prometheusQuery = "sum by (outcome) (rate({${local.promql_events}}[5m]))" }
              }]
            }
          }
        },
        {
          xPos = 6, yPos = 0, width = 6, height = 4
          widget = {
            title = "Replication lag p50 / p99 (ms)"
            xyChart = {
              dataSets = [
                { plotType = "LINE", timeSeriesQuery = { prometheusQuery = "histogram_quantile(0.5, sum by (le) (rate({${local.promql_lag_bucket}}[5m])))" } },
                { plotType = "LINE", timeSeriesQuery = { prometheusQuery = "histogram_quantile(0.99, sum by (le) (rate({${local.promql_lag_bucket}}[5m])))" } },
              ]
            }
          }
        },
        {
          xPos = 0, yPos = 4, width = 6, height = 4
          widget = {
            title = "Oldest unacked change (s), per subscription"
            xyChart = {
              dataSets = [{
                plotType = "LINE"
                timeSeriesQuery = {
                  timeSeriesFilter = {
                    filter      = "${local.push_subscription_filter} AND metric.type = \"pubsub.googleapis.com/subscription/oldest_unacked_message_age\""
                    aggregation = { alignmentPeriod = "60s", perSeriesAligner = "ALIGN_MAX" }
                  }
                }
              }]
            }
          }
        },
        {
          xPos = 6, yPos = 4, width = 6, height = 4
          widget = {
            title = "Undelivered changes, per subscription"
            xyChart = {
              dataSets = [{
                plotType = "LINE"
                timeSeriesQuery = {
                  timeSeriesFilter = {
                    filter      = "${local.push_subscription_filter} AND metric.type = \"pubsub.googleapis.com/subscription/num_undelivered_messages\""
                    aggregation = { alignmentPeriod = "60s", perSeriesAligner = "ALIGN_MAX" }
                  }
                }
              }]
            }
          }
        },
        {
          xPos = 0, yPos = 8, width = 6, height = 4
          widget = {
            title = "Dead letters (forwarded by subscriptions / published to the topic)"
            xyChart = {
              dataSets = [
                {
                  plotType = "STACKED_BAR"
                  timeSeriesQuery = {
                    timeSeriesFilter = {
                      filter      = "${local.push_subscription_filter} AND metric.type = \"pubsub.googleapis.com/subscription/dead_letter_message_count\""
                      aggregation = { alignmentPeriod = "300s", perSeriesAligner = "ALIGN_SUM", crossSeriesReducer = "REDUCE_SUM" }
                    }
                  }
                },
                {
                  plotType = "STACKED_BAR"
                  timeSeriesQuery = {
                    timeSeriesFilter = {
                      filter      = "resource.type = \"pubsub_topic\" AND resource.labels.topic_id = \"${google_pubsub_topic.dead_letter.name}\" AND metric.type = \"pubsub.googleapis.com/topic/send_message_operation_count\""
                      aggregation = { alignmentPeriod = "300s", perSeriesAligner = "ALIGN_SUM", crossSeriesReducer = "REDUCE_SUM" }
                    }
                  }
                },
              ]
            }
          }
        },
        {
          xPos = 6, yPos = 8, width = 6, height = 4
          widget = {
            title = "Function requests by response class (per second)"
            xyChart = {
              dataSets = [{
                plotType = "STACKED_AREA"
                timeSeriesQuery = {
                  timeSeriesFilter = {
                    filter      = "${local.function_revision_filter} AND metric.type = \"run.googleapis.com/request_count\""
                    aggregation = { alignmentPeriod = "60s", perSeriesAligner = "ALIGN_RATE", crossSeriesReducer = "REDUCE_SUM", groupByFields = ["metric.label.response_code_class"] }
                  }
                }
              }]
            }
          }
        },
        {
          xPos = 0, yPos = 12, width = 6, height = 4
          widget = {
            title = "Debezium heartbeats published (per minute)"
            xyChart = {
              dataSets = [{
                plotType = "LINE"
                timeSeriesQuery = {
                  timeSeriesFilter = {
                    filter      = "resource.type = \"pubsub_topic\" AND resource.labels.topic_id = \"${google_pubsub_topic.heartbeat.name}\" AND metric.type = \"pubsub.googleapis.com/topic/send_message_operation_count\""
                    aggregation = { alignmentPeriod = "60s", perSeriesAligner = "ALIGN_SUM", crossSeriesReducer = "REDUCE_SUM" }
                  }
                }
              }]
            }
          }
        },
        {
          xPos = 6, yPos = 12, width = 6, height = 4
          widget = {
            title = "Redis memory usage ratio"
            xyChart = {
              dataSets = [{
                plotType = "LINE"
                timeSeriesQuery = {
                  timeSeriesFilter = {
                    filter      = local.redis_memory_filter
                    aggregation = { alignmentPeriod = "60s", perSeriesAligner = "ALIGN_MAX" }
                  }
                }
              }]
            }
          }
        },
        {
          xPos = 0, yPos = 16, width = 6, height = 4
          widget = {
            title = "Age of the newest applied commit, per table (s)"
            xyChart = {
              dataSets = [{
                plotType        = "LINE"
                timeSeriesQuery = { prometheusQuery = "time() - max by (table) ({${local.promql_commit}}) / 1000" }
              }]
            }
          }
        },
        {
          xPos = 6, yPos = 16, width = 6, height = 4
          widget = {
            title = "Redis errors of the apply path, by kind (per second) / Redis evicted keys"
            xyChart = {
              dataSets = [
                { plotType = "LINE", timeSeriesQuery = { prometheusQuery = "sum by (kind) (rate({${local.promql_redis_errs}}[5m]))" } },
                {
                  plotType = "LINE"
                  timeSeriesQuery = {
                    timeSeriesFilter = {
                      filter      = local.redis_evictions_filter
                      aggregation = { alignmentPeriod = "60s", perSeriesAligner = "ALIGN_RATE" }
                    }
                  }
                },
              ]
            }
          }
        },
        {
          xPos = 0, yPos = 20, width = 6, height = 4
          widget = {
            title = "Function instances"
            xyChart = {
              dataSets = [{
                plotType = "STACKED_AREA"
                timeSeriesQuery = {
                  timeSeriesFilter = {
                    filter      = "${local.function_revision_filter} AND metric.type = \"run.googleapis.com/container/instance_count\""
                    aggregation = { alignmentPeriod = "60s", perSeriesAligner = "ALIGN_MAX", crossSeriesReducer = "REDUCE_SUM", groupByFields = ["metric.label.state"] }
                  }
                }
              }]
            }
          }
        },
        {
          xPos = 6, yPos = 20, width = 6, height = 4
          widget = {
            title = "Sampled reads current when served (share), by source: readcache's consistency sampler"
            xyChart = {
              dataSets = [{
                plotType        = "LINE"
                timeSeriesQuery = { prometheusQuery = "sum by (source) (rate({${local.promql_consistency}, result=\"current\"}[5m])) / sum by (source) (rate({${local.promql_consistency}, result=~\"current|stale|unresolved\"}[5m]))" }
              }]
            }
          }
        },
        {
          xPos = 0, yPos = 24, width = 6, height = 4
          widget = {
            title = "Read staleness p50 / p99 / max (ms): how long the row served had been superseded"
            xyChart = {
              dataSets = [
                { plotType = "LINE", timeSeriesQuery = { prometheusQuery = "histogram_quantile(0.5, sum by (le) (rate({${local.promql_staleness_bucket}}[5m])))" } },
                { plotType = "LINE", timeSeriesQuery = { prometheusQuery = "histogram_quantile(0.99, sum by (le) (rate({${local.promql_staleness_bucket}}[5m])))" } },
                { plotType = "LINE", timeSeriesQuery = { prometheusQuery = "max({${local.promql_staleness_max}})" } },
              ]
            }
          }
        },
        {
          xPos = 6, yPos = 24, width = 6, height = 4
          widget = {
            title = "Sampled reads stale or unresolved (per second), by source"
            xyChart = {
              dataSets = [{
                plotType        = "STACKED_BAR"
                timeSeriesQuery = { prometheusQuery = "sum by (result, source) (rate({${local.promql_consistency}, result=~\"stale|unresolved\"}[5m]))" }
              }]
            }
          }
        },
      ]
    }
  })
}
