# Constraints only: the module configures no provider, so it can be called from another configuration
# (examples/minimal) as well as applied from this directory, where Terraform uses the google provider's
# defaults (Application Default Credentials). Every resource names its project and region itself.
terraform {
  # 1.11: write-only arguments (the Debezium database password never enters the state).
  required_version = ">= 1.11.0"

  required_providers {
    # Every resource and argument here was checked against the hashicorp/google v7.45.0 documentation
    # (website/docs/r/*.html.markdown at tag v7.45.0, August 2026) and is validated and planned against
    # its schema by `make test` (terraform/scripts/check). Only the GA provider is used.
    google = {
      source  = "hashicorp/google"
      version = ">= 7.45, < 8"
    }
    # ephemeral "random_password" needs random >= 3.7.
    random = {
      source  = "hashicorp/random"
      version = ">= 3.7, < 4"
    }
  }
}
