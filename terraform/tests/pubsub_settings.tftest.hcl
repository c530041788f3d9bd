# Topic retention and delivery ordering are choices (variables.tf: topic_message_retention_duration,
# enable_message_ordering): what each default plans, and what setting them changes.

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
    condition     = alltrue([for t in google_pubsub_topic.table : t.message_retention_duration == null]) && google_pubsub_topic.schema_changes.message_retention_duration == null
    error_message = "by default the table and schema-change topics keep no messages (replay goes through Debezium)."
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
