"""The event store: cdc_events (monthly partitions) + cdc_event_ids, user_events, users,
cdc_transactions, dead_letter_queue, consumer_offsets.

Uniqueness of ``event_id``: a unique index of a natively partitioned table must contain the
partition key, and the month of a change is not a function of its id that PostgreSQL could
check. ``cdc_event_ids`` (not partitioned) is therefore the one place where an id is unique;
the write path inserts there first (``ON CONFLICT DO NOTHING RETURNING``) and appends to
``cdc_events`` only the ids that were new. ``cdc_events`` itself has no unique index.

Monthly partitions are created by the service (ahead of time, and on demand for older months,
e.g. a snapshot of old data), not here.

Revision ID: 0001
Revises:
Create Date: 2026-11-21
"""

from __future__ import annotations

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE cdc_events (
            event_id          text        COLLATE "C" NOT NULL,
            event_time        timestamptz NOT NULL,
            kind              text        NOT NULL CHECK (kind IN ('change', 'tombstone')),
            topic             text        NOT NULL,
            kafka_partition   integer     NOT NULL,
            kafka_offset      bigint      NOT NULL,
            connector         text,
            db_name           text,
            schema_name       text,
            table_name        text,
            op                text        CHECK (op IN ('c', 'u', 'd', 'r', 't', 'm')),
            key               jsonb,
            before            jsonb,
            after             jsonb,
            unchanged_columns text[],
            source_ts         timestamptz,
            debezium_ts       timestamptz,
            position          numeric,
            lsn               bigint,
            tx_id             text,
            binlog            jsonb,
            transaction       jsonb,
            snapshot          boolean     NOT NULL DEFAULT false,
            key_hash          bigint,
            ingested_at       timestamptz NOT NULL DEFAULT now()
        ) PARTITION BY RANGE (event_time)
        """
    )
    op.execute(
        "COMMENT ON TABLE cdc_events IS 'One row per source change (and per tombstone), "
        "append-only; partitioned by month of the source commit time (event_time).'"
    )
    op.execute(
        "COMMENT ON COLUMN cdc_events.unchanged_columns IS 'Columns Debezium could not see "
        "(TOAST, unchanged by the update): absent from after, keep the previous value.'"
    )
    # History of one row (cdc history / cdc state): a 64-bit hash of table and key. A btree on
    # (table_name, key jsonb, position) costs three times the rest of the insert; a row's few
    # events are sorted by position after the look-up.
    op.execute("CREATE INDEX cdc_events_history ON cdc_events (key_hash)")
    op.execute(
        "COMMENT ON COLUMN cdc_events.key_hash IS 'blake2b-64 of table_name, US, key (sorted "
        "JSON): the history index. Equal keys have equal text.'"
    )
    # Events in a time range (of a table: filtered on table_name). Rows arrive in time order, so
    # each month's partition is laid out by time and a BRIN index finds a range in a few pages
    # for a fraction of a btree's cost per insert.
    op.execute("CREATE INDEX cdc_events_time ON cdc_events USING brin (event_time)")
    op.execute(
        """
        CREATE TABLE cdc_event_ids (
            event_id   text        COLLATE "C" PRIMARY KEY,
            event_time timestamptz NOT NULL
        )
        """
    )
    # Ids are compared byte-wise (COLLATE "C"): a hex digest has no linguistic order, and a
    # locale-aware comparison costs several times more on every insert.
    op.execute(
        "COMMENT ON TABLE cdc_event_ids IS 'The unique index of cdc_events.event_id (a "
        "partitioned table cannot have one without the partition key).'"
    )
    op.execute(
        """
        CREATE TABLE users (
            user_id    text        PRIMARY KEY,
            first_seen timestamptz NOT NULL,
            last_seen  timestamptz NOT NULL
        )
        """
    )
    op.execute(
        """
        CREATE TABLE user_events (
            event_id         text        COLLATE "C" PRIMARY KEY,
            user_id          text        NOT NULL,
            event_type       text        NOT NULL,
            event_ts         timestamptz NOT NULL,
            amount           numeric,
            duration_seconds double precision,
            metadata         jsonb,
            topic            text        NOT NULL,
            kafka_partition  integer     NOT NULL,
            kafka_offset     bigint      NOT NULL,
            ingested_at      timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    op.execute("CREATE INDEX user_events_user_ts ON user_events (user_id, event_ts)")
    op.execute(
        """
        CREATE TABLE cdc_transactions (
            topic            text        NOT NULL,
            tx_id            text        NOT NULL,
            begin_id         text,
            end_id           text,
            event_count      bigint,
            data_collections jsonb,
            begin_time       timestamptz,
            end_time         timestamptz,
            PRIMARY KEY (topic, tx_id)
        )
        """
    )
    op.execute(
        """
        CREATE TABLE dead_letter_queue (
            id              bigserial   PRIMARY KEY,
            topic           text        NOT NULL,
            kafka_partition integer     NOT NULL,
            kafka_offset    bigint      NOT NULL,
            key             bytea,
            value           bytea,
            headers         jsonb,
            error_type      text        NOT NULL,
            error_code      text        NOT NULL,
            error_message   text        NOT NULL,
            retry_count     integer     NOT NULL DEFAULT 0,
            status          text        NOT NULL DEFAULT 'new'
                                        CHECK (status IN ('new', 'replayed', 'discarded')),
            created_at      timestamptz NOT NULL DEFAULT now(),
            UNIQUE (topic, kafka_partition, kafka_offset)
        )
        """
    )
    op.execute("CREATE INDEX dead_letter_queue_status ON dead_letter_queue (status, created_at)")
    # The shape of sink_kit.postgres.OffsetStore.
    op.execute(
        """
        CREATE TABLE IF NOT EXISTS consumer_offsets (
            group_id    text        NOT NULL,
            topic       text        NOT NULL,
            partition   integer     NOT NULL,
            next_offset bigint      NOT NULL,
            updated_at  timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (group_id, topic, partition)
        )
        """
    )


def downgrade() -> None:
    for table in (
        "dead_letter_queue",
        "cdc_transactions",
        "user_events",
        "users",
        "cdc_event_ids",
        "cdc_events",
    ):
        op.execute(f"DROP TABLE IF EXISTS {table} CASCADE")
