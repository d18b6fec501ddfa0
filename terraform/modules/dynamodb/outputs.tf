output "product_search_index_arn" {
  value = aws_dynamodb_table.product_search_index.arn
}

output "inventory_realtime_arn" {
  value = aws_dynamodb_table.inventory_realtime.arn
}
