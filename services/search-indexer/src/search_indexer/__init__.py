"""Maintains a version-guarded DynamoDB product search index and answers product searches."""
