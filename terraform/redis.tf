# The cache's Redis, one of three engines (var.redis_engine): Memorystore for Redis (one primary, the
# default, this file), or Memorystore for Redis Cluster or Memorystore for Valkey in cluster mode
# (redis_cluster.tf). Whichever it is, the function and the tools get its address, mode, TLS CA and
# credentials from the locals at the end of this file.
#
# Memorystore for Redis: private services access only, AUTH on, TLS (in-transit encryption, port 6378)
# with the instance's own server CA, which the function mounts from Secret Manager.

resource "google_redis_instance" "cache" {
  count = var.redis_engine == "redis" ? 1 : 0

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

# Before the engine choice the instance and its AUTH secret were single resources.
moved {
  from = google_redis_instance.cache
  to   = google_redis_instance.cache[0]
}

moved {
  from = google_secret_manager_secret.redis_auth
  to   = google_secret_manager_secret.redis_auth[0]
}

moved {
  from = google_secret_manager_secret_version.redis_auth
  to   = google_secret_manager_secret_version.redis_auth[0]
}

# The AUTH string, for the function's REDIS_PASSWORD (secret_key_ref). The cluster engines have no AUTH
# string: their clients authenticate with IAM (redis_cluster.tf).
resource "google_secret_manager_secret" "redis_auth" {
  count = var.redis_engine == "redis" ? 1 : 0

  project   = var.project_id
  labels    = local.labels
  secret_id = "${var.name_prefix}-redis-auth"

  replication {
    auto {}
  }

  depends_on = [google_project_service.apis]
}

resource "google_secret_manager_secret_version" "redis_auth" {
  count = var.redis_engine == "redis" ? 1 : 0

  project     = var.project_id
  secret      = google_secret_manager_secret.redis_auth[0].id
  secret_data = google_redis_instance.cache[0].auth_string
}

# The server CA certificates (all of them: during a CA rotation the engine lists the old and the new),
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
  secret_data = local.redis_ca_pem
}

locals {
  redis_standalone = var.redis_engine == "redis"

  # REDIS_MODE of the function and the tools; empty (the function's default) for the standalone engine.
  redis_mode = local.redis_standalone ? "" : "cluster"

  # REDIS_ADDR: the instance's TLS endpoint, or the cluster's discovery endpoint, from which a cluster
  # client learns every node. Memorystore for Valkey lists its auto-created endpoints by connection
  # type; the discovery one is the cluster's entry point.
  redis_addr = (
    local.redis_standalone ? "${google_redis_instance.cache[0].host}:${google_redis_instance.cache[0].port}" :
    var.redis_engine == "redis_cluster" ? "${google_redis_cluster.cache[0].discovery_endpoints[0].address}:${google_redis_cluster.cache[0].discovery_endpoints[0].port}" :
    one(flatten([for e in google_memorystore_instance.cache[0].endpoints : [for c in e.connections : [for a in c.psc_auto_connection : "${a.ip_address}:${a.port}" if a.connection_type == "CONNECTION_TYPE_DISCOVERY"]]]))
  )

  # The server CA certificates as one PEM bundle. The instance lists them as server_ca_certs; both
  # cluster engines as managed_server_ca (their per-instance CA, the one mode whose certificates the
  # provider exposes).
  redis_ca_pem = (
    local.redis_standalone ? join("\n", [for c in google_redis_instance.cache[0].server_ca_certs : trimspace(c.cert)]) :
    var.redis_engine == "redis_cluster" ? join("\n", [for ca in google_redis_cluster.cache[0].managed_server_ca : join("\n", [for chain in ca.ca_certs : join("\n", [for c in chain.certificates : trimspace(c)])])]) :
    join("\n", [for ca in google_memorystore_instance.cache[0].managed_server_ca : join("\n", [for chain in ca.ca_certs : join("\n", [for c in chain.certificates : trimspace(c)])])])
  )

  # Environment variables whose values come from Secret Manager (function.tf, access.tf): the AUTH
  # string of the standalone engine only.
  redis_secret_env = local.redis_standalone ? toset(["REDIS_PASSWORD"]) : toset([])
}
