"""The SQL of the write path (plain text; ``_writer.py`` runs it).

Changes are COPYed straight into the store once their new ids are known; user events and
transaction boundaries go through temporary tables (``ON COMMIT DELETE ROWS``: emptied by the
batch's commit) and set-based upserts.
"""

from __future__ import annotations

TEMP_TABLES = """
CREATE TEMP TABLE IF NOT EXISTS esw_user_events (
    event_id text, user_id text, event_type text, event_ts timestamptz, amount numeric,
    duration_seconds double precision, metadata jsonb, topic text, kafka_partition integer,
    kafka_offset bigint
) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS esw_transactions (
    topic text, tx_id text, begin_id text, end_id text, event_count bigint,
    data_collections jsonb, begin_ms bigint, end_ms bigint
) ON COMMIT DELETE ROWS;
"""


# Which of a batch's ids are stored already, asked only after a COPY into cdc_event_ids hit
# its primary key. The rows that are not stored are then COPYed straight into cdc_event_ids and
# cdc_events (no temporary table, no INSERT ... SELECT); the primary key still refuses an id
# committed meanwhile by another writer (a zombie member during a rebalance), which fails the
# transaction, and the retried batch sees it here.
EXISTING_IDS = "SELECT event_id FROM cdc_event_ids WHERE event_id = ANY(%(ids)s)"

# Milliseconds since the epoch -> timestamptz with to_timestamp(ms / 1000.0): the double's
# error (< 0.25 us until 2100) is below the half microsecond PostgreSQL rounds to, so it is exact.
INSERT_USER_EVENTS = """
INSERT INTO user_events (event_id, user_id, event_type, event_ts, amount, duration_seconds,
                         metadata, topic, kafka_partition, kafka_offset)
SELECT event_id, user_id, event_type, event_ts, amount, duration_seconds, metadata, topic,
       kafka_partition, kafka_offset
FROM esw_user_events
ON CONFLICT (event_id) DO NOTHING
"""

# ORDER BY: replicas upserting the same users lock them in the same order (no deadlock).
UPSERT_USERS = """
INSERT INTO users AS u (user_id, first_seen, last_seen)
SELECT user_id, min(event_ts), max(event_ts) FROM esw_user_events GROUP BY user_id
ORDER BY user_id
ON CONFLICT (user_id) DO UPDATE SET
    first_seen = least(u.first_seen, excluded.first_seen),
    last_seen = greatest(u.last_seen, excluded.last_seen)
"""

UPSERT_TRANSACTIONS = """
INSERT INTO cdc_transactions AS t (topic, tx_id, begin_id, end_id, event_count,
                                   data_collections, begin_time, end_time)
SELECT topic, tx_id, begin_id, end_id, event_count, data_collections,
       to_timestamp(begin_ms / 1000.0), to_timestamp(end_ms / 1000.0)
FROM esw_transactions ORDER BY topic, tx_id
ON CONFLICT (topic, tx_id) DO UPDATE SET
    begin_id = coalesce(t.begin_id, excluded.begin_id),
    end_id = coalesce(t.end_id, excluded.end_id),
    event_count = coalesce(t.event_count, excluded.event_count),
    data_collections = coalesce(t.data_collections, excluded.data_collections),
    begin_time = coalesce(t.begin_time, excluded.begin_time),
    end_time = coalesce(t.end_time, excluded.end_time)
"""

INSERT_DEAD_LETTER = """
    INSERT INTO dead_letter_queue (topic, kafka_partition, kafka_offset, key, value, headers,
                                   error_type, error_code, error_message)
    VALUES (:topic, :partition, :offset, :key, :value, CAST(:headers AS jsonb), :error_type,
            :error_code, :error_message)
    ON CONFLICT (topic, kafka_partition, kafka_offset) DO UPDATE SET
        error_type = excluded.error_type,
        error_code = excluded.error_code,
        error_message = excluded.error_message
    """

FIND_DELETE = """
    SELECT event_id, (extract(epoch FROM event_time) * 1000)::bigint, position, version
    FROM cdc_events
    WHERE key_hash = :key_hash AND table_name = :table AND key = CAST(:key AS jsonb)
      AND kind = 'change' AND op = 'd'
      AND topic = :topic AND kafka_partition = :partition AND kafka_offset < :offset
    ORDER BY kafka_offset DESC LIMIT 1
    """

# A table's sweep, carried by a snapshot's last read of it; a redelivery of the read (or the
# same snapshot's read of another schema's table of that name) finds it stored.
INSERT_SWEEP = """
    INSERT INTO cdc_sweeps (table_name, sweep_version, event_id, topic, kafka_partition,
                            kafka_offset, event_time)
    VALUES (:table_name, :sweep_version, :event_id, :topic, :kafka_partition, :kafka_offset,
            CAST(:event_time AS timestamptz))
    ON CONFLICT (table_name, sweep_version) DO NOTHING
    """
