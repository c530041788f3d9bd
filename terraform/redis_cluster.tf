# The cluster engines (var.redis_engine): Memorystore for Redis Cluster (google_redis_cluster) and
# Memorystore for Valkey in cluster mode (google_memorystore_instance). Both shard the keys over 16,384
# slots on redis_shard_count primaries with redis_replica_count replicas each, and are reached through
# Private Service Connect, never a public address.
#
# Networking: Memorystore creates the PSC endpoints itself (a discovery endpoint, from which a cluster
# client learns every node, and the nodes' endpoint) in a subnet of the module's VPC that a service
# connection policy names, one policy per network, region and service class. The endpoints' addresses
# are RFC 1918, so the function's PRIVATE_RANGES_ONLY Direct VPC egress reaches them; the VPC's
# implied allow-egress rule lets TCP 6379 and 11000-13047 (the nodes' ports) through.
#
# Authentication: IAM (AUTH_MODE_IAM_AUTH, IAM_AUTH), the only authentication either engine offers in
# the GA provider: a client sends a Google OAuth2 access token of its service account as the AUTH
# password on every new connection (a connection stays authenticated after the token expires), and the
# account needs the engine's dbConnectionUser role. The function's and the tools' service accounts get
# it below. The alternative, AUTH disabled, would let anything that reaches the VPC read and rewrite the
# cache, which today's AUTH string prevents.
#
# TLS: in-transit encryption with the engine's per-instance CA (the one CA mode whose certificates the
# provider exposes, as managed_server_ca), mounted as REDIS_CA_FILE like the instance's.

locals {
  redis_cluster_engine = var.redis_engine != "redis"

  # The Network Connectivity service class of each engine's PSC endpoints.
  redis_service_class = {
    redis         = ""
    redis_cluster = "gcp-memorystore-redis"
    valkey        = "gcp-memorystore"
  }[var.redis_engine]

  # Node types are named alike for both engines; Redis Cluster prefixes them with REDIS_.
  redis_cluster_node_type = var.redis_engine == "redis_cluster" ? "REDIS_${var.redis_node_type}" : var.redis_node_type

  # The role that lets a principal authenticate to the cluster with IAM (redis.clusters.connect,
  # memorystore.instances.connect), and who gets it: the function, and the operator job when it exists.
  redis_connection_role = {
    redis         = null
    redis_cluster = "roles/redis.dbConnectionUser"
    valkey        = "roles/memorystore.dbConnectionUser"
  }[var.redis_engine]
  redis_connection_members = local.redis_cluster_engine ? merge(
    { function = google_service_account.function.member },
    var.operator_access ? { tools = google_service_account.tools[0].member } : {},
  ) : {}

  psc_subnetwork_id = !local.redis_cluster_engine ? null : (
    var.create_network ? google_compute_subnetwork.psc[0].id : data.google_compute_subnetwork.psc[0].id
  )
}

# The subnet the PSC endpoints take their addresses from: created with the VPC, or an existing one.
resource "google_compute_subnetwork" "psc" {
  count = local.redis_cluster_engine && var.create_network ? 1 : 0

  project                  = var.project_id
  name                     = var.psc_subnet_name
  region                   = var.region
  network                  = google_compute_network.vpc[0].id
  ip_cidr_range            = var.psc_subnet_cidr
  private_ip_google_access = true
}

data "google_compute_subnetwork" "psc" {
  count = local.redis_cluster_engine && !var.create_network ? 1 : 0

  project = var.project_id
  name    = var.psc_subnet_name
  region  = var.region
}

# Lets the engine create its PSC endpoints in the subnet above. A network holds one policy per region and
# service class: with one already there (another cluster of the same engine in this VPC and region),
# set create_service_connection_policy = false and it is used instead.
resource "google_network_connectivity_service_connection_policy" "redis" {
  count = local.redis_cluster_engine && var.create_service_connection_policy ? 1 : 0

  project       = var.project_id
  labels        = local.labels
  name          = "${var.name_prefix}-${local.redis_service_class}"
  location      = var.region
  service_class = local.redis_service_class
  description   = "cloudsql-cache: the cache's ${var.redis_engine} endpoints in ${var.psc_subnet_name}"
  network       = local.network_id

  psc_config {
    subnetworks = [local.psc_subnetwork_id]
  }

  depends_on = [google_project_service.apis]
}

resource "google_redis_cluster" "cache" {
  count = var.redis_engine == "redis_cluster" ? 1 : 0

  project       = var.project_id
  labels        = local.labels
  name          = "${var.name_prefix}-redis"
  region        = var.region
  shard_count   = var.redis_shard_count
  replica_count = var.redis_replica_count
  node_type     = local.redis_cluster_node_type

  psc_configs {
    network = local.network_id
  }

  authorization_mode      = "AUTH_MODE_IAM_AUTH"
  transit_encryption_mode = "TRANSIT_ENCRYPTION_MODE_SERVER_AUTHENTICATION"
  server_ca_mode          = "SERVER_CA_MODE_GOOGLE_MANAGED_PER_INSTANCE_CA"

  redis_configs = {
    # As for the instance (redis.tf): never evict the version guard's keys.
    "maxmemory-policy" = var.redis_maxmemory_policy
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

  # Both the API's protection and Terraform's.
  deletion_protection_enabled = var.deletion_protection
  deletion_policy             = var.deletion_protection ? "PREVENT" : "DELETE"

  depends_on = [google_network_connectivity_service_connection_policy.redis, google_project_service.apis]
}

resource "google_memorystore_instance" "cache" {
  count = var.redis_engine == "valkey" ? 1 : 0

  project        = var.project_id
  labels         = local.labels
  instance_id    = "${var.name_prefix}-valkey"
  location       = var.region
  mode           = "CLUSTER"
  engine_version = var.valkey_version
  shard_count    = var.redis_shard_count
  replica_count  = var.redis_replica_count
  node_type      = local.redis_cluster_node_type

  desired_auto_created_endpoints {
    network    = local.network_id
    project_id = var.project_id
  }

  authorization_mode      = "IAM_AUTH"
  transit_encryption_mode = "SERVER_AUTHENTICATION"
  server_ca_mode          = "GOOGLE_MANAGED_PER_INSTANCE_CA"

  engine_configs = {
    "maxmemory-policy" = var.redis_maxmemory_policy
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

  deletion_protection_enabled = var.deletion_protection
  deletion_policy             = var.deletion_protection ? "PREVENT" : "DELETE"

  depends_on = [google_network_connectivity_service_connection_policy.redis, google_project_service.apis]
}

# IAM authentication to the cluster. Project-level: the provider has no IAM resource for a cluster or
# a Valkey instance, so the grant reaches every cluster of the engine in the project; the role carries
# nothing but the connect permission. Keep the cache in a project of its own if other clusters there
# must stay out of the function's reach.
resource "google_project_iam_member" "redis_connect" {
  for_each = local.redis_connection_members

  project = var.project_id
  role    = local.redis_connection_role
  member  = each.value
}
