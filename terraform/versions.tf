terraform {
  # 1.11: write-only arguments (the Debezium database password never enters the state).
  required_version = ">= 1.11.0"

  required_providers {
    # Every resource and argument here was checked against the hashicorp/google v7.45.0 documentation
    # (website/docs/r/*.html.markdown at tag v7.45.0, August 2026). Only the GA provider is used.
    google = {
      source  = "hashicorp/google"
      version = "~> 7.45"
    }
    # ephemeral "random_password" needs random >= 3.7.
    random = {
      source  = "hashicorp/random"
      version = "~> 3.7"
    }
  }
}

provider "google" {
  project = var.project_id
  region  = var.region

  default_labels = {
    app = "cloudsql-cache"
  }
}
