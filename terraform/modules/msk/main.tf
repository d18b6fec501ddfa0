# Optional Amazon MSK cluster with IAM authentication (the default is the in-cluster Strimzi
# Kafka of k8s/platform). Clients authenticate on :9098 with an OAUTHBEARER token signed by
# their Pod Identity role: KAFKA_SECURITY_PROTOCOL=SASL_SSL, KAFKA_SASL_MECHANISM=AWS_MSK_IAM
# and AWS_REGION (libs/consumer-runtime/README.md, "MSK IAM"); modules/iam/kafka.tf grants it.

resource "aws_security_group" "msk" {
  name        = "${var.name}-msk"
  description = "MSK brokers: IAM-authenticated TLS from the EKS cluster only"
  vpc_id      = var.vpc_id

  ingress {
    description     = "Kafka over TLS with IAM auth from EKS"
    from_port       = 9098
    to_port         = 9098
    protocol        = "tcp"
    security_groups = [var.client_security_group_id]
  }

  egress {
    description = "Replication between brokers inside the VPC"
    from_port   = 0
    to_port     = 0
    protocol    = "-1"
    cidr_blocks = [var.vpc_cidr_block]
  }
}

resource "aws_cloudwatch_log_group" "msk" {
  name              = "/msk/${var.name}"
  retention_in_days = 365
  kms_key_id        = var.kms_key_arn
}

resource "aws_msk_cluster" "this" {
  cluster_name           = var.name
  kafka_version          = var.kafka_version
  number_of_broker_nodes = 3
  enhanced_monitoring    = "PER_TOPIC_PER_PARTITION"

  broker_node_group_info {
    instance_type   = var.instance_type
    client_subnets  = var.subnet_ids
    security_groups = [aws_security_group.msk.id]
    storage_info {
      ebs_storage_info {
        volume_size = var.volume_size_gb
      }
    }
    connectivity_info {
      public_access {
        type = "DISABLED"
      }
    }
  }

  client_authentication {
    unauthenticated = false
    sasl {
      iam = true
    }
  }

  encryption_info {
    encryption_at_rest_kms_key_arn = var.kms_key_arn
    encryption_in_transit {
      client_broker = "TLS"
      in_cluster    = true
    }
  }

  logging_info {
    broker_logs {
      cloudwatch_logs {
        enabled   = true
        log_group = aws_cloudwatch_log_group.msk.name
      }
    }
  }
}
