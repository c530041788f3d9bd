# The function's Redis pool follows its request concurrency (main.tf: REDIS_POOL_SIZE).

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

run "default_concurrency" {
  command = plan
  assert {
    condition     = google_cloud_run_v2_service.function.template[0].max_instance_request_concurrency == 80 && one([for e in google_cloud_run_v2_service.function.template[0].containers[0].env : e.value if e.name == "REDIS_POOL_SIZE"]) == "82"
    error_message = "the function's Redis pool must hold a connection for each of its 80 concurrent requests, and two more."
  }
}

run "raised_concurrency" {
  command = plan
  variables {
    function_concurrency = 250
  }
  assert {
    condition     = one([for e in google_cloud_run_v2_service.function.template[0].containers[0].env : e.value if e.name == "REDIS_POOL_SIZE"]) == "252"
    error_message = "REDIS_POOL_SIZE must follow function_concurrency."
  }
}
