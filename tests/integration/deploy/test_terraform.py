"""terraform/ without a terraform binary: every file parses (python-hcl2), the DynamoDB tables
match the canonical definitions in deploy/dynamodb, IAM stays scoped, state is remote and
locked, and checkov passes."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import hcl2
import pytest

from .conftest import API, ROOT, SERVICES, needs_api

TF = ROOT / "terraform"
MODULES = (
    "network",
    "eks",
    "msk",
    "rds-postgres",
    "dynamodb",
    "s3-data-lake",
    "glue-catalog",
    "ecr",
    "iam",
    "github-deploy",
    "service-databases",
)
ENVS = ("staging", "prod")


def _load(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as handle:
        data: dict[str, Any] = hcl2.load(handle)
    return data


def _unquote(value: Any) -> Any:
    """python-hcl2 keeps string literals' quotes; compare without them."""
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    if isinstance(value, list):
        return [_unquote(v) for v in value]
    if isinstance(value, dict):
        return {_unquote(k): _unquote(v) for k, v in value.items()}
    return value


def _blocks(kind: str, type_: str) -> Iterator[tuple[Path, str, dict[str, Any]]]:
    for path in sorted(TF.rglob("*.tf")):
        for block in _load(path).get(kind, []):
            for btype, named in _unquote(block).items():
                if btype == type_:
                    for name, body in named.items():
                        yield path, name, body


def test_every_file_parses() -> None:
    files = sorted(TF.rglob("*.tf")) + sorted(TF.rglob("*.tfvars"))
    assert len(files) > 20
    for path in files:
        _load(path)
    for module in MODULES:
        assert (TF / "modules" / module / "main.tf").is_file(), module


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


@pytest.mark.parametrize("table_file", ["product-search-index.json", "inventory-realtime.json"])
def test_dynamodb_tables_match_the_canonical_definitions(table_file: str) -> None:
    canonical = json.loads((ROOT / "deploy/dynamodb" / table_file).read_text())
    tables = {body["name"]: body for _, _, body in _blocks("resource", "aws_dynamodb_table")}
    tf = tables[canonical["TableName"]]
    keys = {k["KeyType"]: k["AttributeName"] for k in canonical["KeySchema"]}
    assert tf["hash_key"] == keys["HASH"]
    assert tf.get("range_key") == keys.get("RANGE")
    assert tf["billing_mode"] == canonical["BillingMode"]
    assert {a["name"]: a["type"] for a in _as_list(tf["attribute"])} == {
        a["AttributeName"]: a["AttributeType"] for a in canonical["AttributeDefinitions"]
    }
    tf_gsis = {g["name"]: g for g in _as_list(tf.get("global_secondary_index", []))}
    canonical_gsis = {g["IndexName"]: g for g in canonical.get("GlobalSecondaryIndexes", [])}
    assert set(tf_gsis) == set(canonical_gsis)
    for name, gsi in canonical_gsis.items():
        gkeys = {k["KeyType"]: k["AttributeName"] for k in gsi["KeySchema"]}
        assert tf_gsis[name]["hash_key"] == gkeys["HASH"], name
        assert tf_gsis[name].get("range_key") == gkeys.get("RANGE"), name
        assert tf_gsis[name]["projection_type"] == gsi["Projection"]["ProjectionType"], name
    assert _as_list(tf["point_in_time_recovery"])[0]["enabled"] is True


def _statements(doc: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield from _as_list(doc.get("statement", []))
    for dyn in _as_list(doc.get("dynamic", [])):
        yield from _as_list(dyn.get("statement", {}).get("content", []))


# Actions that take no resource ARN (the IAM service authorization reference): only "*".
ACTIONS_WITHOUT_RESOURCES = {"ecr:GetAuthorizationToken"}


def test_iam_policies_are_scoped() -> None:
    docs = list(_blocks("data", "aws_iam_policy_document"))
    assert len(docs) >= 8
    for path, name, doc in docs:
        # A KMS key policy can only name the key itself, as "*".
        key_policy = name.endswith("_key_policy")
        for st in _statements(doc):
            where = f"{path.relative_to(ROOT)}: {name} {st.get('sid', '')}"
            if st.get("effect") == "Deny":
                continue
            for action in _as_list(st.get("actions", [])):
                if not key_policy:
                    assert action != "*" and not action.endswith(":*"), where
            # AWS requires "*" for an action without resource-level permissions.
            unscoped = set(_as_list(st.get("actions", []))) <= ACTIONS_WITHOUT_RESOURCES
            if not key_policy and not unscoped:
                assert "*" not in _as_list(st.get("resources", [])), where


def test_one_pod_identity_role_per_service() -> None:
    assocs = {
        body["service_account"]: body
        for _, _, body in _blocks("resource", "aws_eks_pod_identity_association")
    }
    assert set(assocs) == {*SERVICES, API, "cdc-operator", "external-secrets"}
    namespaces = {
        "cdc-operator": "operator_namespace",
        "external-secrets": "external_secrets_namespace",
    }
    for sa, body in assocs.items():
        variable = namespaces.get(sa, "namespace")
        assert body["namespace"] == "${var." + variable + "}", sa
    iam = _load(TF / "modules/iam/main.tf")
    text = (TF / "modules/iam/main.tf").read_text()
    assert "pods.eks.amazonaws.com" in text
    assert iam
    search = {n: b for _, n, b in _blocks("data", "aws_iam_policy_document")}
    search_resources = [
        r for st in _statements(search["search_indexer"]) for r in _as_list(st.get("resources", []))
    ]
    assert "${var.search_table_arn}" in search_resources
    assert not any("inventory" in r or "data_lake" in r for r in search_resources)
    addons = [b for _, _, b in _blocks("resource", "aws_eks_addon")]
    assert "eks-pod-identity-agent" in str(addons)


def test_data_lake_bucket_is_private_encrypted_versioned() -> None:
    main = _load(TF / "modules/s3-data-lake/main.tf")
    resources = {
        (t, n) for block in _unquote(main["resource"]) for t, named in block.items() for n in named
    }
    for needed in (
        "aws_s3_bucket_versioning",
        "aws_s3_bucket_server_side_encryption_configuration",
        "aws_s3_bucket_public_access_block",
        "aws_s3_bucket_lifecycle_configuration",
    ):
        assert (needed, "lake") in resources, needed
    bucket = next(b for _, n, b in _blocks("resource", "aws_s3_bucket") if n == "lake")
    assert bucket["bucket"] == "cdc-platform-data-lake-${var.environment}"
    repos = next(b for _, _, b in _blocks("resource", "aws_ecr_repository"))
    assert _as_list(repos["image_scanning_configuration"])[0]["scan_on_push"] is True
    assert repos["image_tag_mutability"] == "IMMUTABLE"


@pytest.mark.parametrize("env", ENVS)
def test_environments_use_locked_remote_state(env: str) -> None:
    backend = _unquote(_load(TF / "envs" / env / "backend.tf"))["terraform"][0]["backend"][0]["s3"]
    assert backend["use_lockfile"] is True
    assert backend["encrypt"] is True
    assert backend["key"] == f"{env}/terraform.tfstate"
    tfvars = _unquote(_load(TF / "envs" / env / "terraform.tfvars"))
    assert tfvars["environment"] == env
    if env == "prod":
        assert tfvars["rds_multi_az"] is True
    # The two environments run the same code; only tfvars and the state key differ.
    for name in ("main.tf", "variables.tf", "outputs.tf", "versions.tf"):
        assert (TF / "envs" / env / name).read_text() == (TF / "envs/staging" / name).read_text()


def test_checkov_passes(checkov: Callable[..., dict[str, Any]]) -> None:
    report = checkov(TF, "terraform", TF / ".checkov.yaml")
    assert report["passed"] > 100
    failed = sorted(f"{c['check_id']} {c['resource']} ({c['file_path']})" for c in report["failed"])
    assert not failed, "\n".join(failed)


# The DynamoDB calls each service makes (read from their sink modules); the role must allow them.
# The AWS calls a service makes, read from its code (verify.py and cli.py are the operator's
# and the dev stack's tools, run with other credentials), mapped to the IAM actions they need.
_IAM_FOR_CALL = {
    "put_item": {"dynamodb:PutItem"},
    "get_item": {"dynamodb:GetItem"},
    "batch_get_item": {"dynamodb:BatchGetItem"},
    "update_item": {"dynamodb:UpdateItem"},
    "delete_item": {"dynamodb:DeleteItem"},
    "batch_write_item": {"dynamodb:BatchWriteItem", "dynamodb:PutItem", "dynamodb:DeleteItem"},
    "query": {"dynamodb:Query"},
    "describe_table": {"dynamodb:DescribeTable"},
    # TransactWriteItems is authorised per item; the indexer's transactions hold Puts only.
    "transact_write_items": {"dynamodb:PutItem"},
    "ensure_table": {"dynamodb:DescribeTable"},  # the table exists: Terraform made it
    "put_object": {"s3:PutObject"},
    "get_object": {"s3:GetObject"},
    "ensure_bucket": {"s3:ListBucket"},  # HeadBucket; the bucket exists
    # The Iceberg tables through pyiceberg's GlueCatalog (EKS), and their files in the warehouse.
    "namespace_exists": {"glue:GetDatabase"},  # create_namespace: never, Terraform made it
    # The tables of the namespace: the service's maintenance job goes over every one.
    "list_tables": {"glue:GetTables"},
    "load_table": {"glue:GetTable", "s3:GetObject"},
    # GetDatabase: the table's location; the metadata file written after a check it is new.
    "create_table": {"glue:GetDatabase", "glue:CreateTable", "s3:GetObject", "s3:PutObject"},
    # The table read (its VersionId) and updated; data files, manifests and metadata written,
    # the parent's manifests read, a refused attempt's files deleted.
    "commit_transaction": {
        "glue:GetDatabase",
        "glue:GetTable",
        "glue:UpdateTable",
        "s3:GetObject",
        "s3:PutObject",
        "s3:DeleteObject",
    },
}
# Run by operators (`cdc dev verify`, the service's CLI commands), not by the service's role.
_TOOLS = {"verify.py", "cli.py", "_verify_reads.py"}


READ_MODELS = ROOT / "libs" / "read-models" / "src" / "read_models"


def _read_models_modules(text: str) -> set[Path]:
    """The read_models modules a source uses, and those they use in turn: ``from read_models.x
    import A`` names the module of x's package that defines A (its ``__init__`` re-exports it),
    so a service that imports only the statistics reader is not charged with the stock
    table's reads."""
    import re

    found: set[Path] = set()
    todo = [text]
    while todo:
        source = todo.pop()
        step: set[Path] = set()
        for sub, mod in re.findall(r"from read_models\.(\w+)\.(\w+) import", source):
            step.add(READ_MODELS / sub / f"{mod}.py")
        for sub, grouped, inline in re.findall(
            r"^from read_models\.(\w+) import (?:\(([^)]*)\)|([\w ,]+)$)", source, re.M
        ):
            names = grouped or inline
            package = READ_MODELS / sub
            if not package.is_dir():
                step.add(READ_MODELS / f"{sub}.py")
                continue
            init = (package / "__init__.py").read_text()
            for name in (n.strip() for n in names.split(",") if n.strip()):
                where = re.search(
                    rf"^from read_models\.{sub}\.(\w+) import (?:\([^)]*|[\w ,]*)\b{name}\b",
                    init,
                    re.M,
                )
                step.add(package / f"{where.group(1)}.py" if where else package / "__init__.py")
        for path in step - found:
            if path.exists():
                found.add(path)
                todo.append(path.read_text())
    return found


def _code_of(service: str) -> list[Path]:
    """The modules whose AWS calls a service's process makes: its package (the storage calls
    live in its store/ package) and the read_models modules it imports from (the reads the
    services share with the read API live there)."""
    package = ROOT / "services" / service / "src" / service.replace("-", "_")
    files = [p for p in package.rglob("*.py") if p.name not in _TOOLS]
    shared: set[Path] = set()
    for path in files:
        shared |= _read_models_modules(path.read_text())
    return files + sorted(p for p in shared if p.exists() and p.name not in _TOOLS)


def _needed_actions(service: str) -> set[str]:
    import re

    needed: set[str] = set()
    for path in _code_of(service):
        for call in re.findall(r"\b([a-z_]+)\(", path.read_text()):
            needed |= _IAM_FOR_CALL.get(call, set())
    return needed


@pytest.mark.parametrize("service", [s for s in SERVICES if s != "event-store-writer"])
def test_each_role_grants_exactly_the_aws_calls_its_service_makes(service: str) -> None:
    """Least privilege, per service: every DynamoDB, S3 and Glue action its code needs, and no
    other."""
    docs = {name: doc for _, name, doc in _blocks("data", "aws_iam_policy_document")}
    granted = {
        a
        for st in _statements(docs[service.replace("-", "_")])
        for a in _as_list(st.get("actions", []))
        if a.startswith(("dynamodb:", "s3:", "glue:"))
    }
    assert granted == _needed_actions(service), service


def test_the_lake_catalog_is_a_glue_database_only_the_flusher_may_use() -> None:
    """The Glue database of the lake's Iceberg tables: the flusher's default namespace in both
    environments, located in the warehouse; the flusher's role may read it and create and
    update its tables, with the tables' files under the warehouse prefix only, and no other
    role may touch Glue. The VPC reaches Glue through an endpoint (the consumers' egress is the
    VPC only)."""
    from analytics_flusher.settings import FlusherSettings

    module = TF / "modules/glue-catalog"
    [(_, _, database)] = [
        (p, n, b) for p, n, b in _blocks("resource", "aws_glue_catalog_database") if n == "lake"
    ]
    assert database["name"] == "${var.database_name}"
    assert database["location_uri"] == (
        "s3://${var.bucket_name}/${var.warehouse_prefix}/${var.database_name}.db"
    )
    outputs = {
        name: body["value"]
        for block in _unquote(_load(module / "outputs.tf"))["output"]
        for name, body in block.items()
    }
    assert outputs["catalog_arn"] == "${local.glue_arn_prefix}:catalog"
    assert outputs["database_arn"] == "${aws_glue_catalog_database.lake.arn}"
    assert (
        outputs["tables_arn"]
        == "${local.glue_arn_prefix}:table/${aws_glue_catalog_database.lake.name}/*"
    )
    assert outputs["warehouse"] == "s3://${var.bucket_name}/${var.warehouse_prefix}"
    variables = {
        name: body for block in _unquote(_load(module / "variables.tf"))["variable"]
        for name, body in block.items()
    }  # fmt: skip
    assert variables["warehouse_prefix"]["default"] == "warehouse"

    namespace = FlusherSettings.model_fields["lake_namespace"].default
    for env in ENVS:
        env_vars = {
            name: body for block in _unquote(_load(TF / f"envs/{env}/variables.tf"))["variable"]
            for name, body in block.items()
        }  # fmt: skip
        assert env_vars["lake_namespace"]["default"] == namespace
        env_main = _unquote(_load(TF / f"envs/{env}/main.tf"))
        modules = {n: b for block in env_main["module"] for n, b in block.items()}
        assert modules["lake_catalog"]["source"] == "../../modules/glue-catalog"
        assert modules["lake_catalog"]["database_name"] == "${var.lake_namespace}"
        env_outputs = {
            name: body["value"]
            for block in _unquote(_load(TF / f"envs/{env}/outputs.tf"))["output"]
            for name, body in block.items()
        }
        assert env_outputs["lake_catalog_database"] == "${module.lake_catalog.database_name}"

    docs = {name: doc for _, name, doc in _blocks("data", "aws_iam_policy_document")}
    flusher = {st.get("sid"): st for st in _statements(docs["analytics_flusher"])}
    catalog, database = "${var.lake_catalog.catalog_arn}", "${var.lake_catalog.database_arn}"
    tables = "${var.lake_catalog.tables_arn}"
    assert flusher["LakeCatalogDatabase"]["actions"] == ["glue:GetDatabase"]
    assert flusher["LakeCatalogDatabase"]["resources"] == [catalog, database]
    assert set(flusher["LakeCatalogTables"]["actions"]) == {
        "glue:GetTable",
        "glue:GetTables",
        "glue:CreateTable",
        "glue:UpdateTable",
    }
    assert flusher["LakeCatalogTables"]["resources"] == [catalog, database, tables]
    assert flusher["LakeWarehouseObjects"]["resources"] == [
        "${var.data_lake_bucket_arn}/${var.lake_catalog.warehouse_prefix}/*"
    ]
    others = {
        (name, a)
        for name, doc in docs.items()
        if name != "analytics_flusher"
        for st in _statements(doc)
        for a in _as_list(st.get("actions", []))
        if a.startswith(("glue:", "lakeformation:"))
    }
    # The read API may read the catalog (test_the_read_api_s_role_may_only_read below).
    assert others <= {("query_api", "glue:GetDatabase"), ("query_api", "glue:GetTable"),
                      ("query_api", "glue:GetTables")}, others  # fmt: skip
    endpoints = _unquote(_load(TF / "modules/network/endpoints.tf"))["locals"][0]
    assert "glue" in endpoints["interface_endpoints"]


def test_the_event_store_needs_no_aws_permission_without_msk() -> None:
    assert _needed_actions("event-store-writer") == set()
    doc = {name: doc for _, name, doc in _blocks("data", "aws_iam_policy_document")}[
        "event_store_writer"
    ]
    assert list(_statements(doc)) == []  # only the Kafka statements, merged in with MSK


def test_search_table_expires_markers_by_ttl() -> None:
    tables = {name: body for _, name, body in _blocks("resource", "aws_dynamodb_table")}
    ttl = tables["product_search_index"]["ttl"]
    ttl = ttl[0] if isinstance(ttl, list) else ttl
    assert ttl["attribute_name"] == "ttl" and ttl["enabled"] is True


# What each consumer does on Kafka, and so needs on MSK with IAM auth: connect, read its
# topics, produce its dead letters (and alerts) idempotently, use its consumer group.
KAFKA_ACTIONS = {
    "KafkaConnect": {
        "kafka-cluster:Connect",
        "kafka-cluster:DescribeCluster",
        "kafka-cluster:WriteDataIdempotently",
    },
    "KafkaRead": {"kafka-cluster:DescribeTopic", "kafka-cluster:ReadData"},
    "KafkaWrite": {"kafka-cluster:DescribeTopic", "kafka-cluster:WriteData"},
    "KafkaGroup": {"kafka-cluster:DescribeGroup", "kafka-cluster:AlterGroup"},
}
# Topics each service produces to (its dead letters; the statistics' low-stock alerts).
KAFKA_WRITES = {
    "event-store-writer": ["event-store-writer.dlq"],
    "stats-aggregator": ["stats-aggregator.dlq", "alerts.low-stock"],
    "search-indexer": ["search-indexer.dlq"],
    "analytics-flusher": ["analytics-flusher.dlq"],
}


def _msk_locals() -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for block in _load(TF / "modules/iam/main.tf").get("locals", []):
        merged.update(_unquote(block))
    return merged


def test_msk_iam_grants_each_consumer_what_it_does_on_kafka() -> None:
    docs = {name: doc for _, name, doc in _blocks("data", "aws_iam_policy_document")}
    kafka = docs["kafka"]
    statements = {st["sid"]: st for st in _statements(kafka)}
    assert set(statements) == set(KAFKA_ACTIONS)
    for sid, needed in KAFKA_ACTIONS.items():
        assert set(_as_list(statements[sid]["actions"])) == needed, sid
    assert statements["KafkaConnect"]["resources"] == ["${var.msk.cluster_arn}"]
    assert statements["KafkaGroup"]["resources"] == ["${local.msk_group_arn}/${each.key}-group"]
    topics = _msk_locals()["topics"]
    assert set(topics) == set(SERVICES)
    for service in SERVICES:
        assert topics[service]["write"] == KAFKA_WRITES[service], service
        assert topics[service]["read"], service
        # Each role's policy takes its own entry of the Kafka document, and only with MSK.
        source = docs[service.replace("-", "_")]["source_policy_documents"]
        assert f'data.aws_iam_policy_document.kafka["{service}"].json' in str(source), service
        assert "var.msk == null ? []" in str(source), service


def test_the_operator_may_only_describe_the_consumers_groups_and_topics() -> None:
    docs = {name: doc for _, name, doc in _blocks("data", "aws_iam_policy_document")}
    granted = {a for st in _statements(docs["operator_kafka"]) for a in _as_list(st["actions"])}
    assert granted == {
        "kafka-cluster:Connect",
        "kafka-cluster:DescribeCluster",
        "kafka-cluster:DescribeTopic",
        "kafka-cluster:DescribeGroup",
    }
    assert not any("ReadData" in a or "Write" in a or "Alter" in a for a in granted)


def test_github_deploys_only_from_its_environment_and_only_the_consumers() -> None:
    """The deploy role trusts GitHub's OIDC tokens of one repository's environment (whose
    reviewers approve production), pushes only cdc-platform images and edits only the
    consumers' namespace."""
    docs = {name: doc for _, name, doc in _blocks("data", "aws_iam_policy_document")}
    [trust] = list(_statements(docs["trust"]))
    assert trust["actions"] == ["sts:AssumeRoleWithWebIdentity"]
    conditions = {c["variable"]: c for c in _as_list(trust["condition"])}
    sub = conditions["${local.oidc_host}:sub"]
    assert sub["test"] == "StringEquals"  # not StringLike: no wildcard branch or environment
    assert sub["values"] == ["repo:${var.github_repository}:environment:${var.github_environment}"]
    assert conditions["${local.oidc_host}:aud"]["values"] == ["sts.amazonaws.com"]
    deploy = {st["sid"]: st for st in _statements(docs["deploy"])}
    assert deploy["EcrPush"]["resources"] == ["${local.ecr_prefix}/*"]
    assert deploy["EksKubeconfig"]["resources"] == ["${var.cluster_arn}"]
    assert not any(a.startswith(("iam:", "sts:")) for st in deploy.values() for a in st["actions"])
    scope = {
        name: body for _, name, body in _blocks("resource", "aws_eks_access_policy_association")
    }["deploy"]["access_scope"]
    scope = scope[0] if isinstance(scope, list) else scope
    assert (scope["type"], scope["namespaces"]) == ("namespace", ["${var.namespace}"])
    for env in ENVS:
        tfvars = _unquote(_load(TF / f"envs/{env}/terraform.tfvars"))
        assert tfvars["github_environment"] == ("production" if env == "prod" else "staging")


def test_service_database_logins_live_in_secrets_manager_and_only_external_secrets_reads_them() -> (
    None
):
    variables = {
        name: body for block in _load(TF / "modules/service-databases/variables.tf")["variable"]
        for name, body in _unquote(block).items()
    }  # fmt: skip
    assert variables["services"]["default"] == {
        "event-store-writer": "event_store",
        "stats-aggregator": "stats",
    }
    versions = {
        name: body for _, name, body in _blocks("resource", "aws_secretsmanager_secret_version")
    }["this"]
    secret = str(versions["secret_string"])
    assert "sslmode=require" in secret and "random_password.this" in secret
    secrets = {name: body for _, name, body in _blocks("resource", "aws_secretsmanager_secret")}
    assert secrets["this"]["kms_key_id"] == "${var.kms_key_arn}"
    docs = {name: doc for _, name, doc in _blocks("data", "aws_iam_policy_document")}
    granted = {a for st in _statements(docs["external_secrets"]) for a in _as_list(st["actions"])}
    assert granted == {
        "secretsmanager:GetSecretValue",
        "secretsmanager:DescribeSecret",
        "kms:Decrypt",
    }
    for env in ENVS:
        env_main = (TF / f"envs/{env}/main.tf").read_text()
        assert '"../../modules/service-databases"' in env_main
        assert "module.service_databases.secret_arns" in env_main  # what the ESO role may read
    # Generated, long, and safe inside the URL the consumers get (no characters to escape).
    password = {name: body for _, name, body in _blocks("resource", "random_password")}["this"]
    assert password["length"] >= 32 and password["special"] is False


# What the read API may do: read. Its role's whole action set, which its code's calls must fall
# within (test below) and which holds no write.
QUERY_API_ACTIONS = {
    "dynamodb:DescribeTable",
    "dynamodb:GetItem",
    "dynamodb:BatchGetItem",
    "dynamodb:Query",
    "glue:GetDatabase",
    "glue:GetTable",
    "glue:GetTables",
    "s3:GetObject",
    "s3:ListBucket",
    "kms:Decrypt",
    "kms:DescribeKey",
}
# An action is a read when its verb is one of these (the IAM service authorization reference's
# "Read" and "List" access levels for DynamoDB, Glue, S3 and KMS, by name).
_READ_VERBS = ("Get", "BatchGet", "Query", "Scan", "List", "Describe", "Decrypt")


def _query_api_statements() -> dict[str, dict[str, Any]]:
    docs = {name: doc for _, name, doc in _blocks("data", "aws_iam_policy_document")}
    return {st["sid"]: st for st in _statements(docs["query_api"])}


def test_the_read_api_s_role_may_only_read() -> None:
    """query-api's role: exactly the read actions it needs, none that writes, each on the
    consumers' tables (and their indexes), the lake's Glue database and tables, and the
    warehouse prefix of the lake bucket; no Kafka document merged in, and its own Pod Identity
    association."""
    statements = _query_api_statements()
    granted = {a for st in statements.values() for a in _as_list(st["actions"])}
    assert granted == QUERY_API_ACTIONS
    writes = {a for a in granted if not a.split(":", 1)[1].startswith(_READ_VERBS)}
    assert not writes, writes
    tables = [
        "${var.search_table_arn}",
        "${var.search_table_arn}/index/*",
        "${var.inventory_table_arn}",
        "${var.inventory_table_arn}/index/*",
    ]
    assert statements["ReadTables"]["resources"] == tables
    catalog, database = "${var.lake_catalog.catalog_arn}", "${var.lake_catalog.database_arn}"
    assert statements["LakeCatalogDatabase"]["resources"] == [catalog, database]
    assert statements["LakeCatalogTables"]["resources"] == [
        catalog, database, "${var.lake_catalog.tables_arn}"
    ]  # fmt: skip
    prefix = "${var.lake_catalog.warehouse_prefix}"
    assert statements["LakeWarehouseObjects"]["resources"] == [
        "${var.data_lake_bucket_arn}/" + prefix + "/*"
    ]
    listing = statements["LakeWarehouseList"]
    assert listing["resources"] == ["${var.data_lake_bucket_arn}"]
    [condition] = _as_list(listing["condition"])
    assert (condition["test"], condition["variable"], condition["values"]) == (
        "StringLike", "s3:prefix", [prefix + "/*"]
    )  # fmt: skip
    assert statements["DecryptWithDataKey"]["resources"] == ["${var.kms_key_arn}"]
    docs = {name: doc for _, name, doc in _blocks("data", "aws_iam_policy_document")}
    assert "source_policy_documents" not in docs["query_api"]
    assocs = {
        body["service_account"]: body
        for _, _, body in _blocks("resource", "aws_eks_pod_identity_association")
    }
    assert assocs[API]["role_arn"] == "${aws_iam_role.query_api.arn}"
    for env in ENVS:
        outputs = (TF / f"envs/{env}/outputs.tf").read_text()
        assert "module.iam.query_api_role_arn" in outputs, env
        assert f'"{API}"' in (TF / f"envs/{env}/main.tf").read_text(), env  # its ECR repository


def test_the_read_api_s_code_calls_only_what_its_role_allows() -> None:
    """The AWS calls in services/query-api (mapped to IAM actions like the consumers') are all
    reads its role grants."""
    needs_api()
    needed = _needed_actions(API)
    assert needed, "no AWS call found in query_api: is the call map missing one?"
    assert needed <= QUERY_API_ACTIONS, sorted(needed - QUERY_API_ACTIONS)
