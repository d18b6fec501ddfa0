-- The stats aggregator's database; the event store's is POSTGRES_DB (event_store).
CREATE DATABASE stats;
-- The analytics flusher's Iceberg catalog (pyiceberg's SQL catalog creates its tables in it).
CREATE DATABASE lake;
