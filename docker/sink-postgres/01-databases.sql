-- The stats aggregator's database; the event store's is POSTGRES_DB (event_store).
CREATE DATABASE stats;
