# The apply function on Cloud Run: authenticated invocations only (the push identity alone holds
# roles/run.invoker), ingress restricted to internal sources. Pub/Sub push counts as internal traffic
# when the subscription is in the same project as the service, so INGRESS_TRAFFIC_INTERNAL_ONLY does
# not need a load balancer in front (see README.md).

resource "google_cloud_run_v2_service" "function" {
  project  = var.project_id
  labels   = local.labels
  name     = "${var.name_prefix}-apply"
  location = var.region

  ingress              = "INGRESS_TRAFFIC_INTERNAL_ONLY"
  invoker_iam_disabled = false
  deletion_protection  = var.deletion_protection

  template {
    service_account                  = google_service_account.function.email
    max_instance_request_concurrency = var.function_concurrency
    # Pub/Sub gives up on a push after ack_deadline_seconds; Cloud Run need not wait longer.
    timeout = "${var.ack_deadline_seconds}s"

    scaling {
      min_instance_count = var.function_min_instances
      max_instance_count = var.function_max_instances
    }

    # Direct VPC egress: Memorystore's private IP is reached through the VPC; Google APIs (Pub/Sub for
    # dead letters, Monitoring) keep the default path.
    vpc_access {
      egress = "PRIVATE_RANGES_ONLY"
      network_interfaces {
        network    = local.network_id
        subnetwork = local.subnetwork_id
      }
    }

    containers {
      image = var.function_image

      ports {
        container_port = 8080
      }

      resources {
        limits = {
          cpu    = var.function_cpu
          memory = var.function_memory
        }
        # CPU always allocated: the OpenTelemetry periodic exporter runs between requests, and a
        # throttled CPU would delay or lose the metrics the alerts read. min_instance_count keeps it
        # running when no change arrives.
        cpu_idle          = false
        startup_cpu_boost = true
      }

      dynamic "env" {
        for_each = { for name, value in local.function_env : name => value if value != "" }
        content {
          name  = env.key
          value = env.value
        }
      }

      # The standalone engine's AUTH string; the cluster engines authenticate with IAM instead.
      dynamic "env" {
        for_each = local.redis_secret_env
        content {
          name = env.key
          value_source {
            secret_key_ref {
              secret  = google_secret_manager_secret.redis_auth[0].secret_id
              version = google_secret_manager_secret_version.redis_auth[0].version
            }
          }
        }
      }

      volume_mounts {
        name       = "redis-ca"
        mount_path = local.redis_ca_path
      }

      startup_probe {
        tcp_socket {
          port = 8080
        }
        period_seconds    = 2
        timeout_seconds   = 1
        failure_threshold = 15
      }
    }

    volumes {
      name = "redis-ca"
      secret {
        secret = google_secret_manager_secret.redis_ca.secret_id
        items {
          path    = local.redis_ca_file
          version = google_secret_manager_secret_version.redis_ca.version
          mode    = 292 # 0444
        }
      }
    }
  }

  lifecycle {
    # Cloud Build deploys new revisions with new images (cloudbuild.yaml); Terraform only sets the first.
    ignore_changes = [
      template[0].containers[0].image,
      client,
      client_version,
    ]
  }

  depends_on = [
    google_project_service.apis,
    google_secret_manager_secret_iam_member.function_secrets,
    google_pubsub_topic_iam_member.function_dead_letter_publisher,
  ]
}
