#!/usr/bin/env bash
# LocalStack ready hook: the data lake bucket and the DynamoDB tables, from the same canonical
# definitions Terraform is checked against (deploy/dynamodb, mounted at /opt/cdc/dynamodb).
set -euo pipefail

awslocal s3api head-bucket --bucket cdc-platform-data-lake-local 2>/dev/null ||
    awslocal s3 mb s3://cdc-platform-data-lake-local

for definition in /opt/cdc/dynamodb/*.json; do
    table="$(basename "$definition" .json)"
    awslocal dynamodb describe-table --table-name "$table" >/dev/null 2>&1 ||
        awslocal dynamodb create-table --cli-input-json "file://$definition" >/dev/null
    echo "table $table ready"
done
