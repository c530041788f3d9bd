# Values the mocked google provider returns for computed attributes during plan (the test files set
# override_during = plan), where the real provider would read them from the API after apply. Everything
# not listed here gets a random string per resource instance, so two references compare equal only when
# they name the same object. What is listed is what the provider's own plan-time validation checks the
# format of (IAM members, service account names, network links) or what the tests compare with a
# literal.

mock_data "google_project" {
  defaults = {
    number = "123456789012"
  }
}

mock_data "google_compute_network" {
  defaults = {
    id        = "projects/my-project/global/networks/prod-vpc"
    self_link = "https://www.googleapis.com/compute/v1/projects/my-project/global/networks/prod-vpc"
  }
}

mock_data "google_compute_subnetwork" {
  defaults = {
    id = "projects/my-project/regions/europe-west1/subnetworks/prod-run-egress"
  }
}

mock_data "google_sql_database_instance" {
  defaults = {
    private_ip_address = "10.20.0.3"
    server_ca_cert     = [{ cert = "-----BEGIN CERTIFICATE-----\nexisting-instance-ca\n-----END CERTIFICATE-----" }]
  }
}

mock_resource "google_compute_network" {
  defaults = {
    id = "projects/my-project/global/networks/cloudsql-cache"
  }
}

mock_resource "google_compute_subnetwork" {
  defaults = {
    id = "projects/my-project/regions/europe-west1/subnetworks/cloudsql-cache-run"
  }
}

mock_resource "google_sql_database_instance" {
  defaults = {
    private_ip_address = "10.100.0.3"
    server_ca_cert     = [{ cert = "-----BEGIN CERTIFICATE-----\ncreated-instance-ca\n-----END CERTIFICATE-----" }]
  }
}

mock_resource "google_redis_instance" {
  defaults = {
    host = "10.100.1.4"
    port = 6378
  }
}

# The service accounts, each with its own address: the tests tell them apart.
override_resource {
  target = google_service_account.function
  values = {
    email     = "cloudsql-cache-fn@my-project.iam.gserviceaccount.com"
    member    = "serviceAccount:cloudsql-cache-fn@my-project.iam.gserviceaccount.com"
    name      = "projects/my-project/serviceAccounts/cloudsql-cache-fn@my-project.iam.gserviceaccount.com"
    id        = "projects/my-project/serviceAccounts/cloudsql-cache-fn@my-project.iam.gserviceaccount.com"
    unique_id = "100000000000000000001"
  }
}

override_resource {
  target = google_service_account.debezium
  values = {
    email     = "cloudsql-cache-dbz@my-project.iam.gserviceaccount.com"
    member    = "serviceAccount:cloudsql-cache-dbz@my-project.iam.gserviceaccount.com"
    name      = "projects/my-project/serviceAccounts/cloudsql-cache-dbz@my-project.iam.gserviceaccount.com"
    id        = "projects/my-project/serviceAccounts/cloudsql-cache-dbz@my-project.iam.gserviceaccount.com"
    unique_id = "100000000000000000002"
  }
}

override_resource {
  target = google_service_account.push
  values = {
    email     = "cloudsql-cache-push@my-project.iam.gserviceaccount.com"
    member    = "serviceAccount:cloudsql-cache-push@my-project.iam.gserviceaccount.com"
    name      = "projects/my-project/serviceAccounts/cloudsql-cache-push@my-project.iam.gserviceaccount.com"
    id        = "projects/my-project/serviceAccounts/cloudsql-cache-push@my-project.iam.gserviceaccount.com"
    unique_id = "100000000000000000003"
  }
}

override_resource {
  target = google_service_account.build
  values = {
    email     = "cloudsql-cache-build@my-project.iam.gserviceaccount.com"
    member    = "serviceAccount:cloudsql-cache-build@my-project.iam.gserviceaccount.com"
    name      = "projects/my-project/serviceAccounts/cloudsql-cache-build@my-project.iam.gserviceaccount.com"
    id        = "projects/my-project/serviceAccounts/cloudsql-cache-build@my-project.iam.gserviceaccount.com"
    unique_id = "100000000000000000004"
  }
}

override_resource {
  target = google_service_account.db_setup
  values = {
    email     = "cloudsql-cache-dbsetup@my-project.iam.gserviceaccount.com"
    member    = "serviceAccount:cloudsql-cache-dbsetup@my-project.iam.gserviceaccount.com"
    name      = "projects/my-project/serviceAccounts/cloudsql-cache-dbsetup@my-project.iam.gserviceaccount.com"
    id        = "projects/my-project/serviceAccounts/cloudsql-cache-dbsetup@my-project.iam.gserviceaccount.com"
    unique_id = "100000000000000000005"
  }
}

override_resource {
  target = google_service_account.tools
  values = {
    email     = "cloudsql-cache-ops@my-project.iam.gserviceaccount.com"
    member    = "serviceAccount:cloudsql-cache-ops@my-project.iam.gserviceaccount.com"
    name      = "projects/my-project/serviceAccounts/cloudsql-cache-ops@my-project.iam.gserviceaccount.com"
    id        = "projects/my-project/serviceAccounts/cloudsql-cache-ops@my-project.iam.gserviceaccount.com"
    unique_id = "100000000000000000006"
  }
}

# The other resource types: a block for each, so that their computed attributes are known during plan too
# (random values).
mock_resource "google_artifact_registry_repository" {}
mock_resource "google_artifact_registry_repository_iam_member" {}
mock_resource "google_cloud_run_v2_job" {}
mock_resource "google_cloud_run_v2_job_iam_member" {}
mock_resource "google_cloud_run_v2_service" {}
mock_resource "google_cloud_run_v2_service_iam_member" {}
mock_resource "google_cloud_run_v2_worker_pool" {}
mock_resource "google_compute_global_address" {}
mock_resource "google_monitoring_alert_policy" {}
mock_resource "google_monitoring_dashboard" {}
mock_resource "google_monitoring_notification_channel" {}
mock_resource "google_project_iam_member" {}
mock_resource "google_project_service" {}
mock_resource "google_pubsub_subscription" {}
mock_resource "google_pubsub_subscription_iam_member" {}
mock_resource "google_pubsub_topic" {}
mock_resource "google_pubsub_topic_iam_member" {}
mock_resource "google_secret_manager_secret" {}
mock_resource "google_secret_manager_secret_iam_member" {}
mock_resource "google_secret_manager_secret_version" {}
mock_resource "google_service_account" {}
mock_resource "google_service_account_iam_member" {}
mock_resource "google_service_networking_connection" {}
mock_resource "google_sql_database" {}
mock_resource "google_sql_user" {}
mock_resource "google_storage_bucket" {}
mock_resource "google_storage_bucket_iam_member" {}
