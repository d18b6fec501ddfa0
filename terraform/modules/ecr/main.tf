# One ECR repository per image: immutable tags (the git SHA), scanned on push, KMS-encrypted,
# old untagged images expired. scripts/deploy-consumers.sh also creates a missing repository
# with the same settings, so a new service can be deployed before Terraform knows it.

resource "aws_ecr_repository" "this" {
  for_each             = toset(var.repositories)
  name                 = "cdc-platform/${each.value}"
  image_tag_mutability = "IMMUTABLE"

  image_scanning_configuration {
    scan_on_push = true
  }

  encryption_configuration {
    encryption_type = "KMS"
    kms_key         = var.kms_key_arn
  }
}

resource "aws_ecr_lifecycle_policy" "this" {
  for_each   = aws_ecr_repository.this
  repository = each.value.name
  policy = jsonencode({
    rules = [{
      rulePriority = 1
      description  = "Keep the last 100 images"
      selection = {
        tagStatus   = "any"
        countType   = "imageCountMoreThan"
        countNumber = 100
      }
      action = { type = "expire" }
    }]
  })
}
