# MSK with IAM authentication (KAFKA_SASL_MECHANISM=AWS_MSK_IAM): what each consumer may do on
# the cluster, written once for all of them and merged into each role's policy
# (source_policy_documents in main.tf). Only when var.msk is set; with the in-cluster Kafka of
# k8s/platform, Kafka ACLs do this job instead.
#
# Per service: connect; read its source topics; write its dead-letter topic (and, for the
# statistics, the low-stock alerts) with an idempotent producer, which needs
# WriteDataIdempotently on the cluster; and use its own consumer group (join, commit, read its
# offsets).

locals {
  msk_topic_arn = "${local.msk_prefix}:topic/${local.msk_path}"
  msk_group_arn = "${local.msk_prefix}:group/${local.msk_path}"
}

data "aws_iam_policy_document" "kafka" {
  for_each = var.msk == null ? {} : local.topics

  statement {
    sid       = "KafkaConnect"
    actions   = ["kafka-cluster:Connect", "kafka-cluster:DescribeCluster", "kafka-cluster:WriteDataIdempotently"]
    resources = [var.msk.cluster_arn]
  }
  statement {
    sid       = "KafkaRead"
    actions   = ["kafka-cluster:DescribeTopic", "kafka-cluster:ReadData"]
    resources = [for t in each.value.read : "${local.msk_topic_arn}/${t}"]
  }
  statement {
    sid       = "KafkaWrite"
    actions   = ["kafka-cluster:DescribeTopic", "kafka-cluster:WriteData"]
    resources = [for t in each.value.write : "${local.msk_topic_arn}/${t}"]
  }
  statement {
    sid       = "KafkaGroup"
    actions   = ["kafka-cluster:DescribeGroup", "kafka-cluster:AlterGroup"]
    resources = ["${local.msk_group_arn}/${each.key}-group"]
  }
}

# The operator (k8s/operator) reads each consumer group's lag: committed offsets (OffsetFetch)
# and end offsets (ListOffsets). Describe only: it never reads a record, joins a group or
# commits.
data "aws_iam_policy_document" "operator_kafka" {
  count = var.msk == null ? 0 : 1

  statement {
    sid       = "KafkaConnect"
    actions   = ["kafka-cluster:Connect", "kafka-cluster:DescribeCluster"]
    resources = [var.msk.cluster_arn]
  }
  statement {
    sid       = "KafkaDescribeTopics"
    actions   = ["kafka-cluster:DescribeTopic"]
    resources = distinct(flatten([for s in values(local.topics) : [for t in s.read : "${local.msk_topic_arn}/${t}"]]))
  }
  statement {
    sid       = "KafkaDescribeGroups"
    actions   = ["kafka-cluster:DescribeGroup"]
    resources = [for svc in keys(local.topics) : "${local.msk_group_arn}/${svc}-group"]
  }
}

resource "aws_iam_role" "operator" {
  count              = var.msk == null ? 0 : 1
  name               = "${var.name_prefix}-cdc-operator"
  assume_role_policy = data.aws_iam_policy_document.assume.json
}

resource "aws_iam_role_policy" "operator" {
  count  = var.msk == null ? 0 : 1
  name   = "cdc-operator"
  role   = aws_iam_role.operator[0].id
  policy = data.aws_iam_policy_document.operator_kafka[0].json
}

resource "aws_eks_pod_identity_association" "operator" {
  count           = var.msk == null ? 0 : 1
  cluster_name    = var.cluster_name
  namespace       = var.operator_namespace
  service_account = "cdc-operator"
  role_arn        = aws_iam_role.operator[0].arn
}
