output "function_url" {
  description = "URL of the apply function."
  value       = module.cloudsql_cache.function_url
}

output "table_topics" {
  description = "Pub/Sub topic of each captured table."
  value       = module.cloudsql_cache.table_topics
}

output "redis_host" {
  description = "Memorystore endpoint (host:port, TLS and AUTH) for readers of the cache."
  value       = module.cloudsql_cache.redis_host
}

output "dashboard" {
  description = "Cloud Monitoring dashboard."
  value       = module.cloudsql_cache.dashboard
}
