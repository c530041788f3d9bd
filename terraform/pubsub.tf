# Topics Debezium publishes to (one per captured table, the schema-change topic and the heartbeat topic),
# the dead-letter topic, and one ordered, OIDC-authenticated push subscription per table topic and for
# the schema-change topic, delivering to the function. Transaction metadata needs no topic:
# debezium-server/application.properties.tmpl drops its BEGIN/END records before the sink.

resource "google_pubsub_topic" "table" {
  for_each = local.table_topics

  project                    = var.project_id
  labels                     = local.labels
  name                       = each.value
  message_retention_duration = local.topic_retention

  # Debezium publishes through the regional endpoint of var.region (ordering keys are ordered per
  # region); keep the messages there too.
  message_storage_policy {
    allowed_persistence_regions = [var.region]
  }

  depends_on = [google_project_service.apis]
}

# Schema changes (include.schema.changes): Debezium publishes them to the topic named topic.prefix, with
# the ordering key {"databaseName":…}. The function sweeps a table on the statements that remove rows
# without row events, and completes a snapshot from them.
resource "google_pubsub_topic" "schema_changes" {
  project                    = var.project_id
  labels                     = local.labels
  name                       = var.topic_prefix
  message_retention_duration = local.topic_retention

  message_storage_policy {
    allowed_persistence_regions = [var.region]
  }

  depends_on = [google_project_service.apis]
}

resource "google_pubsub_topic" "heartbeat" {
  project = var.project_id
  labels  = local.labels
  name    = local.heartbeat_topic

  message_storage_policy {
    allowed_persistence_regions = [var.region]
  }

  depends_on = [google_project_service.apis]
}

# Dead letters: the function publishes permanently bad messages here itself (DEAD_LETTER_TOPIC) before
# acknowledging them, and every push subscription forwards here what keeps failing (dead_letter_policy).
resource "google_pubsub_topic" "dead_letter" {
  project                    = var.project_id
  labels                     = local.labels
  name                       = "${var.name_prefix}-dead-letter"
  message_retention_duration = var.message_retention_duration

  message_storage_policy {
    allowed_persistence_regions = [var.region]
  }

  depends_on = [google_project_service.apis]
}

# Messages published to a topic without subscriptions are lost: this one keeps dead letters for
# inspection and replay (pull it with `gcloud pubsub subscriptions pull`).
resource "google_pubsub_subscription" "dead_letter" {
  project                    = var.project_id
  labels                     = local.labels
  name                       = "${var.name_prefix}-dead-letter"
  topic                      = google_pubsub_topic.dead_letter.id
  ack_deadline_seconds       = 60
  message_retention_duration = var.message_retention_duration
  retain_acked_messages      = true

  expiration_policy {
    ttl = ""
  }
}

# One per table topic (keyed by db.table) and one for the schema-change topic (key "schema_changes", which
# no db.table can be).
resource "google_pubsub_subscription" "push" {
  for_each = merge(google_pubsub_topic.table, { schema_changes = google_pubsub_topic.schema_changes })

  project = var.project_id
  labels  = local.labels
  name    = "${each.value.name}.apply"
  topic   = each.value.id

  # Changes of one row (one ordering key: the row's primary key JSON; for schema changes, one database)
  # arrive in commit order, one at a time; the function's version guard makes redelivery and replay
  # harmless, and keeps the newest change when ordering is off (var.enable_message_ordering). Either
  # way Debezium publishes with ordering keys: the function reads the row's key from it.
  enable_message_ordering = var.enable_message_ordering

  # Also the push request timeout; keep it above the function's APPLY_TIMEOUT.
  ack_deadline_seconds       = var.ack_deadline_seconds
  message_retention_duration = var.message_retention_duration
  # The function's repair seeks back past a loss in Redis through the topic's retention (stored once per
  # topic, sized to the loss, local.topic_retention), not by keeping acknowledged messages here for
  # message_retention_duration.
  retain_acked_messages = false

  push_config {
    push_endpoint = google_cloud_run_v2_service.function.uri

    # Pub/Sub signs a Google OIDC token as the push identity; Cloud Run's IAM check admits it because
    # that identity, and nobody else, holds roles/run.invoker on the function.
    oidc_token {
      service_account_email = google_service_account.push.email
      audience              = google_cloud_run_v2_service.function.uri
    }
  }

  retry_policy {
    minimum_backoff = var.retry_minimum_backoff
    maximum_backoff = var.retry_maximum_backoff
  }

  # Backstop for messages that keep failing with 5xx (the function dead-letters permanently bad ones
  # itself and acknowledges them).
  dead_letter_policy {
    dead_letter_topic     = google_pubsub_topic.dead_letter.id
    max_delivery_attempts = var.max_delivery_attempts
  }

  # A quiet table must not lose its subscription: never expire.
  expiration_policy {
    ttl = ""
  }

  depends_on = [
    google_cloud_run_v2_service_iam_member.push_invoker,
    google_pubsub_topic_iam_member.dead_letter_service_agent,
  ]
}

# --- IAM on topics and subscriptions (resource level only) -------------------------------------------

resource "google_pubsub_topic_iam_member" "debezium_publisher" {
  for_each = merge(
    { for t, topic in google_pubsub_topic.table : t => topic.id },
    { heartbeat = google_pubsub_topic.heartbeat.id, schema_changes = google_pubsub_topic.schema_changes.id },
  )

  project = var.project_id
  topic   = each.value
  role    = "roles/pubsub.publisher"
  member  = google_service_account.debezium.member
}

resource "google_pubsub_topic_iam_member" "function_dead_letter_publisher" {
  project = var.project_id
  topic   = google_pubsub_topic.dead_letter.id
  role    = "roles/pubsub.publisher"
  member  = google_service_account.function.member
}

# Dead-lettering by the subscriptions: the Pub/Sub service agent publishes to the dead-letter topic and
# acknowledges the forwarded message on the source subscription.
resource "google_pubsub_topic_iam_member" "dead_letter_service_agent" {
  project = var.project_id
  topic   = google_pubsub_topic.dead_letter.id
  role    = "roles/pubsub.publisher"
  member  = local.pubsub_service_agent
}

resource "google_pubsub_subscription_iam_member" "dead_letter_service_agent" {
  for_each = google_pubsub_subscription.push

  project      = var.project_id
  subscription = each.value.id
  role         = "roles/pubsub.subscriber"
  member       = local.pubsub_service_agent
}

# The function's repair seeks the push subscriptions back past a loss in Redis (Seek needs
# pubsub.subscriptions.consume, which roles/pubsub.subscriber holds; on these subscriptions only).
resource "google_pubsub_subscription_iam_member" "function_seek" {
  for_each = local.repair_by_seek ? google_pubsub_subscription.push : {}

  project      = var.project_id
  subscription = each.value.id
  role         = "roles/pubsub.subscriber"
  member       = google_service_account.function.member
}
