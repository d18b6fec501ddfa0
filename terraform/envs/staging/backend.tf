# Remote state in S3 with S3-native locking (no DynamoDB lock table). The state bucket is
# created once per account, by hand or a bootstrap stack, with versioning and encryption on.
terraform {
  backend "s3" {
    bucket       = "cdc-platform-terraform-state"
    key          = "staging/terraform.tfstate"
    region       = "eu-west-1"
    encrypt      = true
    use_lockfile = true
  }
}
