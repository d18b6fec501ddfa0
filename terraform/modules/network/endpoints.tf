# Interface VPC endpoints for the AWS APIs the consumers call, with private DNS: their usual
# host names resolve to addresses inside the VPC, so the consumers' NetworkPolicy can allow
# HTTPS to the VPC's CIDR only (k8s/base/networkpolicy.yaml) instead of to the internet. The
# NAT gateway stays for the nodes (image pulls, EKS).

data "aws_region" "current" {}

locals {
  # DynamoDB (search index, stock projection), Glue (the lake's Iceberg catalog), S3 (data
  # lake), STS (web identity, MSK IAM).
  interface_endpoints = ["dynamodb", "glue", "s3", "sts"]
}

resource "aws_security_group" "endpoints" {
  name        = "${var.name}-vpc-endpoints"
  description = "HTTPS from inside the VPC to the AWS API endpoints"
  vpc_id      = aws_vpc.this.id

  ingress {
    description = "HTTPS from the VPC"
    from_port   = 443
    to_port     = 443
    protocol    = "tcp"
    cidr_blocks = [var.cidr_block]
  }
}

resource "aws_vpc_endpoint" "interface" {
  for_each            = toset(local.interface_endpoints)
  vpc_id              = aws_vpc.this.id
  service_name        = "com.amazonaws.${data.aws_region.current.region}.${each.value}"
  vpc_endpoint_type   = "Interface"
  subnet_ids          = aws_subnet.private[*].id
  security_group_ids  = [aws_security_group.endpoints.id]
  private_dns_enabled = true
}
