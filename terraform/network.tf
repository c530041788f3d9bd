# Private networking: Cloud SQL and Memorystore get private IPs only, through private services access
# (VPC peering with the service producers); the function and Debezium reach them with Cloud Run Direct
# VPC egress from one subnet. No public IP, NAT or connector is involved.

resource "google_compute_network" "vpc" {
  count = var.create_network ? 1 : 0

  project                 = var.project_id
  name                    = var.network_name
  auto_create_subnetworks = false
  routing_mode            = "REGIONAL"

  depends_on = [google_project_service.apis]
}

data "google_compute_network" "existing" {
  count = var.create_network ? 0 : 1

  project = var.project_id
  name    = var.network_name
}

resource "google_compute_subnetwork" "run" {
  count = var.create_network ? 1 : 0

  project       = var.project_id
  name          = var.subnet_name
  region        = var.region
  network       = google_compute_network.vpc[0].id
  ip_cidr_range = var.subnet_cidr
  # Google APIs (Pub/Sub, Secret Manager, Monitoring) stay reachable without external addresses.
  private_ip_google_access = true

  log_config {
    aggregation_interval = "INTERVAL_5_MIN"
    flow_sampling        = 0.5
    metadata             = "INCLUDE_ALL_METADATA"
  }
}

data "google_compute_subnetwork" "existing" {
  count = var.create_network ? 0 : 1

  project = var.project_id
  name    = var.subnet_name
  region  = var.region
}

locals {
  network_id    = var.create_network ? google_compute_network.vpc[0].id : data.google_compute_network.existing[0].id
  subnetwork_id = var.create_network ? google_compute_subnetwork.run[0].id : data.google_compute_subnetwork.existing[0].id
}

resource "google_compute_global_address" "private_services" {
  count = var.create_private_service_access ? 1 : 0

  project       = var.project_id
  labels        = local.labels
  name          = "${var.name_prefix}-private-services"
  purpose       = "VPC_PEERING"
  address_type  = "INTERNAL"
  address       = var.private_service_range_address
  prefix_length = var.private_service_range_prefix_length
  network       = local.network_id
}

resource "google_service_networking_connection" "private_services" {
  count = var.create_private_service_access ? 1 : 0

  network                 = local.network_id
  service                 = "servicenetworking.googleapis.com"
  reserved_peering_ranges = [google_compute_global_address.private_services[0].name]
  # Deleting the peering fails while producer resources (Cloud SQL, Redis) still exist or are being
  # cleaned up; on destroy leave it to be removed with the VPC.
  deletion_policy = "ABANDON"
}
