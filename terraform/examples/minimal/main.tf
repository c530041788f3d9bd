# The smallest configuration that deploys cloudsql-cache: the module with its required inputs, and the
# provider it needs. Copy this directory, point source at the module (a git URL, or a path to a clone's
# terraform/ directory), then: terraform init && terraform plan.

terraform {
  required_version = ">= 1.11.0"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = ">= 7.45, < 8"
    }
    random = {
      source  = "hashicorp/random"
      version = ">= 3.7, < 4"
    }
  }
}

provider "google" {
  project = var.project_id
  region  = var.region
}

module "cloudsql_cache" {
  source = "../.."

  project_id     = var.project_id
  region         = var.region
  tables         = var.tables
  function_image = var.function_image
  debezium_image = var.debezium_image
  tools_image    = var.tools_image
}
