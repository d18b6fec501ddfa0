"""Embedded dev and test stack: everything from PyPI, no Docker.

A Kafka-protocol broker (tansu), PostgreSQL (source with logical decoding, and sink), the AWS
emulator (moto server), the real Debezium PostgreSQL connector relayed to the broker, a shop
workload simulator and a ground-truth checker. Used by ``make up``, the CLI and every test tier.
"""

from devstack._aws import AWS_TEST_ENV, AwsEmulator
from devstack._aws_faults import ThrottlingProxy
from devstack._broker import Broker, create_topics
from devstack._devup import dev_up
from devstack._flow import FlowMonitor, op_of
from devstack._kafka_io import Record, produce, read_topic
from devstack._pipeline import FlowCheck, Pipeline, expected_flow, flow_checks
from devstack._postgres import PostgresServer
from devstack._proc import ManagedProcess, free_port, wait_for_port, wait_until
from devstack._relay import DebeziumRelay, java_home
from devstack._relay_config import RelayConfig
from devstack._shop import ORDER_STATUSES, SHOP_DDL, SHOP_TABLES, install_schema
from devstack._stack import SINK_DATABASE, SOURCE_DATABASE, TOPIC_PREFIX, Stack
from devstack.simulator import USER_EVENTS_TOPIC, Ledger, ShopSimulator
from devstack.verify import Check, StackInfo, VerifyContext, VerifyReport, verify

__all__ = [
    "AWS_TEST_ENV",
    "ORDER_STATUSES",
    "SHOP_DDL",
    "SHOP_TABLES",
    "SINK_DATABASE",
    "SOURCE_DATABASE",
    "TOPIC_PREFIX",
    "USER_EVENTS_TOPIC",
    "AwsEmulator",
    "Broker",
    "Check",
    "DebeziumRelay",
    "FlowCheck",
    "FlowMonitor",
    "Ledger",
    "ManagedProcess",
    "Pipeline",
    "PostgresServer",
    "Record",
    "RelayConfig",
    "ShopSimulator",
    "Stack",
    "StackInfo",
    "ThrottlingProxy",
    "VerifyContext",
    "VerifyReport",
    "create_topics",
    "dev_up",
    "expected_flow",
    "flow_checks",
    "free_port",
    "install_schema",
    "java_home",
    "op_of",
    "produce",
    "read_topic",
    "verify",
    "wait_for_port",
    "wait_until",
]
