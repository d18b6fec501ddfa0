output "role_arns" {
  value = {
    "event-store-writer" = aws_iam_role.event_store_writer.arn
    "stats-aggregator"   = aws_iam_role.stats_aggregator.arn
    "search-indexer"     = aws_iam_role.search_indexer.arn
    "analytics-flusher"  = aws_iam_role.analytics_flusher.arn
  }
}

output "query_api_role_arn" {
  description = "The read API's read-only role (Pod Identity for cdc-consumers/query-api)."
  value       = aws_iam_role.query_api.arn
}

output "operator_role_arn" {
  description = "The operator's role (reads consumer lag over MSK IAM); null without MSK."
  value       = var.msk == null ? null : aws_iam_role.operator[0].arn
}
