# Topic retention and delivery ordering are choices (variables.tf: topic_message_retention_duration,
# enable_message_ordering): what each default plans, and what setting them changes. With repair_by_seek
# (the default) the topics' retention is what the repair's seek replays: sized by default to the losses
# it must cover (main.tf: local.repair_retention_needed, a day more), and refused when set shorter.

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

run "defaults" {
  command = plan

  assert {
    # ONE_HOUR snapshots + 10m margin + 5s watch interval + 1h for Memorystore = 7805 s, and a day.
    condition     = alltrue([for t in google_pubsub_topic.table : t.message_retention_duration == "94205s"]) && google_pubsub_topic.schema_changes.message_retention_duration == "94205s" && output.topic_message_retention_duration == "94205s"
    error_message = "by default the table and schema-change topics keep every message for what the repair needs (7805s) and a day: 94205s."
  }
  assert {
    condition     = alltrue([for s in google_pubsub_subscription.push : s.retain_acked_messages == false]) && one([for e in google_cloud_run_v2_service.function.template[0].containers[0].env : e.value if e.name == "REPAIR_SEEK_MAX"]) == "94205s"
    error_message = "the repair seeks through the topics' retention: the push subscriptions keep no acknowledged messages, and REPAIR_SEEK_MAX is the topics' retention."
  }
  assert {
    condition     = alltrue([for s in google_pubsub_subscription.push : s.message_retention_duration == "604800s"])
    error_message = "the push subscriptions keep their unacknowledged backlog for 7 days by default."
  }
  assert {
    condition     = google_pubsub_topic.dead_letter.message_retention_duration == "604800s" && google_pubsub_subscription.dead_letter.message_retention_duration == "604800s"
    error_message = "dead letters are kept for message_retention_duration whatever the topic retention."
  }
  assert {
    condition     = length(google_pubsub_subscription.push) == 3 && alltrue([for s in google_pubsub_subscription.push : s.enable_message_ordering == true])
    error_message = "by default every push subscription delivers in ordering-key order."
  }
}

run "retention_and_unordered" {
  command = plan

  variables {
    topic_message_retention_duration = "86400s"
    enable_message_ordering          = false
  }

  assert {
    condition     = alltrue([for t in google_pubsub_topic.table : t.message_retention_duration == "86400s"]) && google_pubsub_topic.schema_changes.message_retention_duration == "86400s"
    error_message = "topic_message_retention_duration sets the table and schema-change topics' retention."
  }
  assert {
    condition     = google_pubsub_topic.dead_letter.message_retention_duration == "604800s" && alltrue([for s in google_pubsub_subscription.push : s.message_retention_duration == "604800s"])
    error_message = "topic retention leaves the subscriptions' and the dead-letter topic's alone."
  }
  assert {
    condition     = length(google_pubsub_subscription.push) == 3 && alltrue([for s in google_pubsub_subscription.push : s.enable_message_ordering == false])
    error_message = "enable_message_ordering = false turns ordering off on every push subscription, the schema-change one included."
  }
}

run "topic_retention_follows_the_snapshot_period" {
  command = plan
  variables {
    redis_rdb_snapshot_period = "TWENTY_FOUR_HOURS"
  }
  assert {
    condition     = alltrue([for t in google_pubsub_topic.table : t.message_retention_duration == "177005s"])
    error_message = "a day between snapshots: 86400 + 600 + 5 + 3600 = 90605s needed, and a day: 177005s."
  }
}

# repair_seek_margin 1h30m: 3600 + 5400 + 5 + 3600 = 12605 s needed, no more.
run "topic_retention_just_enough" {
  command = plan
  variables {
    repair_seek_margin               = "1h30m"
    topic_message_retention_duration = "12605s"
  }
  assert {
    condition     = alltrue([for t in google_pubsub_topic.table : t.message_retention_duration == "12605s"])
    error_message = "a retention that covers the repair's window is kept as given."
  }
}

run "topic_retention_too_short_for_the_repair" {
  command = plan
  variables {
    repair_seek_margin               = "1h30m"
    topic_message_retention_duration = "12604s"
  }
  expect_failures = [var.topic_message_retention_duration]
}

run "topic_retention_short_without_repair" {
  command = plan
  variables {
    repair_by_seek                   = false
    topic_message_retention_duration = "600s"
  }
  assert {
    condition     = alltrue([for t in google_pubsub_topic.table : t.message_retention_duration == "600s"])
    error_message = "without repair_by_seek any topic retention is accepted."
  }
}

run "topic_retention_out_of_range" {
  command = plan
  variables {
    topic_message_retention_duration = "2678401s"
  }
  expect_failures = [var.topic_message_retention_duration]
}

run "topic_retention_not_seconds" {
  command = plan
  variables {
    topic_message_retention_duration = "1d"
  }
  expect_failures = [var.topic_message_retention_duration]
}

run "event_format" {
  command = plan
  variables {
    event_format = "full"
  }
  assert {
    condition     = one([for e in google_cloud_run_v2_worker_pool.debezium.template[0].containers[0].env : e.value if e.name == "EVENT_FORMAT"]) == "full"
    error_message = "event_format reaches Debezium Server as EVENT_FORMAT."
  }
}

run "event_format_default" {
  command = plan
  assert {
    condition     = one([for e in google_cloud_run_v2_worker_pool.debezium.template[0].containers[0].env : e.value if e.name == "EVENT_FORMAT"]) == "compact"
    error_message = "Debezium Server publishes the compact format by default."
  }
}

run "event_format_unknown" {
  command = plan
  variables {
    event_format = "avro"
  }
  expect_failures = [var.event_format]
}
