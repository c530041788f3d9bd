# terraform.tfvars.example as a user copies it, planned against the mocked API: the plan the README's
# deployment section starts with. Run by scripts/check as
#   terraform test -test-directory=tests/example -var-file=terraform.tfvars.example
# (its own directory, so the other suites keep their own variables).

mock_provider "google" {
  override_during = plan
  source          = "./tests/mocks"
}

run "example_tfvars" {
  command = plan

  assert {
    condition     = toset(keys(google_pubsub_subscription.push)) == toset(concat(var.tables, ["schema_changes"])) && length(var.tables) > 0
    error_message = "The example's tables and the schema-change topic must each get a push subscription."
  }

  assert {
    condition     = google_cloud_run_v2_service.function.template[0].containers[0].image == var.function_image && google_cloud_run_v2_worker_pool.debezium.template[0].containers[0].image == var.debezium_image
    error_message = "The example's images must be the ones deployed."
  }

  assert {
    condition     = length(google_monitoring_notification_channel.email) == length(var.notification_emails)
    error_message = "The example's notification e-mails must each get a channel."
  }

  assert {
    condition     = strcontains(one([for e in google_cloud_run_v2_service.function.template[0].containers[0].env : e.value if e.name == "CACHE_KEY_TEMPLATES"]), "shop.orders=order:{id}")
    error_message = "The example's key template must reach the function."
  }
}
