# Memorystore for Redis: private services access only, AUTH on, TLS (in-transit encryption, port 6378)
# with the instance's own server CA, which the function mounts from Secret Manager.

resource "google_redis_instance" "cache" {
  project        = var.project_id
  labels         = local.labels
  name           = "${var.name_prefix}-redis"
  region         = var.region
  tier           = var.redis_tier
  memory_size_gb = var.redis_memory_size_gb
  redis_version  = var.redis_version

  # Reachable only from the VPC through the private services access range: no public endpoint exists
  # for Memorystore, and PRIVATE_SERVICE_ACCESS shares the range Cloud SQL uses.
  connect_mode       = "PRIVATE_SERVICE_ACCESS"
  authorized_network = local.network_id

  auth_enabled            = true
  transit_encryption_mode = "SERVER_AUTHENTICATION"

  redis_configs = {
    # Chosen on purpose, see variables.tf: the version guard lives in the cached keys and tombstones,
    # so the cache must never drop them silently. A full cache makes writes fail loudly instead.
    "maxmemory-policy" = var.redis_maxmemory_policy
  }

  # A node restarted with both copies gone (or the basic tier's one node) comes back from the last
  # snapshot instead of empty; the function notices the loss of what came after and repairs it.
  persistence_config {
    persistence_mode    = var.redis_persistence_mode
    rdb_snapshot_period = var.redis_persistence_mode == "RDB" ? var.redis_rdb_snapshot_period : null
  }

  maintenance_policy {
    weekly_maintenance_window {
      day = "SUNDAY"
      start_time {
        hours   = 3
        minutes = 0
        seconds = 0
        nanos   = 0
      }
    }
  }

  deletion_protection = var.deletion_protection

  depends_on = [google_service_networking_connection.private_services, google_project_service.apis]
}

# The AUTH string, for the function's REDIS_PASSWORD (secret_key_ref).
resource "google_secret_manager_secret" "redis_auth" {
  project   = var.project_id
  labels    = local.labels
  secret_id = "${var.name_prefix}-redis-auth"

  replication {
    auto {}
  }

  depends_on = [google_project_service.apis]
}

resource "google_secret_manager_secret_version" "redis_auth" {
  project     = var.project_id
  secret      = google_secret_manager_secret.redis_auth.id
  secret_data = google_redis_instance.cache.auth_string
}

# The server CA certificates (all of them: during a CA rotation the instance lists the old and the new),
# mounted into the function as REDIS_CA_FILE.
resource "google_secret_manager_secret" "redis_ca" {
  project   = var.project_id
  labels    = local.labels
  secret_id = "${var.name_prefix}-redis-server-ca"

  replication {
    auto {}
  }

  depends_on = [google_project_service.apis]
}

resource "google_secret_manager_secret_version" "redis_ca" {
  project     = var.project_id
  secret      = google_secret_manager_secret.redis_ca.id
  secret_data = join("\n", [for c in google_redis_instance.cache.server_ca_certs : trimspace(c.cert)])
}
