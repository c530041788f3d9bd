variable "project_id" {
  description = "Google Cloud project to deploy into."
  type        = string
}

variable "region" {
  description = "Region of the deployment."
  type        = string
  default     = "europe-west1"
}

variable "tables" {
  description = "Tables to capture and cache, as db.table."
  type        = list(string)
}

variable "function_image" {
  description = "Image of the apply function (built by cloudbuild.yaml)."
  type        = string
}

variable "debezium_image" {
  description = "Image of Debezium Server (built by cloudbuild.yaml)."
  type        = string
}

variable "tools_image" {
  description = "Image of the operator tools, cachectl and verify (built by cloudbuild.yaml)."
  type        = string
}
