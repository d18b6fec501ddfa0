# The two DynamoDB tables. Their keys and indexes are defined once, in
# deploy/dynamodb/*.json (CreateTable input, also used by LocalStack and the tests); these
# resources must declare the same, which tests/integration/deploy checks.

resource "aws_dynamodb_table" "product_search_index" {
  name                        = "product-search-index"
  billing_mode                = "PAY_PER_REQUEST"
  hash_key                    = "pk"
  range_key                   = "sk"
  deletion_protection_enabled = true

  attribute {
    name = "pk"
    type = "S"
  }
  attribute {
    name = "sk"
    type = "S"
  }
  attribute {
    name = "gsi_name_pk"
    type = "S"
  }
  attribute {
    name = "name_norm"
    type = "S"
  }
  attribute {
    name = "price_bucket"
    type = "S"
  }
  attribute {
    name = "price"
    type = "N"
  }

  global_secondary_index {
    name            = "by-name"
    hash_key        = "gsi_name_pk"
    range_key       = "name_norm"
    projection_type = "ALL"
  }

  global_secondary_index {
    name            = "by-price"
    hash_key        = "price_bucket"
    range_key       = "price"
    projection_type = "ALL"
  }

  # Deletion markers and removed postings carry a `ttl` (epoch seconds): DynamoDB expires them.
  ttl {
    attribute_name = "ttl"
    enabled        = true
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = var.kms_key_arn
  }
}

resource "aws_dynamodb_table" "inventory_realtime" {
  name                        = "inventory-realtime"
  billing_mode                = "PAY_PER_REQUEST"
  hash_key                    = "pk"
  deletion_protection_enabled = true

  attribute {
    name = "pk"
    type = "S"
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = var.kms_key_arn
  }
}
