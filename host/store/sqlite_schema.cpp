#include "store/sqlite_schema.hpp"

#include <iterator>

namespace eventflow::store {
namespace {

// Each entry is one schema version; never edit one that has shipped.
// Version 1 also creates processed_events (tables::processedEventsDdl), which
// journeys read.
const char* const kMigrations[] = {
    R"(
CREATE TABLE raw_events (
  event_id TEXT PRIMARY KEY,
  event_type TEXT NOT NULL,
  pipeline TEXT NOT NULL,
  payload TEXT NOT NULL,
  payload_sha256 TEXT NOT NULL,
  correlation_id TEXT,
  received_at TEXT NOT NULL,
  state TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  updated_at TEXT NOT NULL,
  last_error TEXT
);
CREATE INDEX raw_events_unfinished ON raw_events(state, updated_at)
  WHERE state IN ('received', 'queued', 'processing', 'retrying');
CREATE INDEX raw_events_pipeline_state ON raw_events(pipeline, state);
CREATE TABLE failed_events (
  event_id TEXT PRIMARY KEY,
  pipeline TEXT NOT NULL,
  payload TEXT NOT NULL,
  error_type TEXT NOT NULL,
  error_message TEXT,
  stage TEXT,
  plugin TEXT,
  attempts INTEGER NOT NULL,
  first_failed_at TEXT NOT NULL,
  failed_at TEXT NOT NULL,
  replay_count INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX failed_events_pipeline ON failed_events(pipeline, failed_at);
CREATE INDEX failed_events_error_type ON failed_events(error_type, failed_at);
)",
    // 2: the DLQ listing without a pipeline or error_type filter, in failed_at order.
    R"(
CREATE INDEX failed_events_failed_at ON failed_events(failed_at, event_id);
)",
    // 3: how often the embedded queue handed an event out after a crash (poison, G5).
    R"(
ALTER TABLE raw_events ADD COLUMN deliveries integer NOT NULL DEFAULT 0;
)",
    // 4: first delivery to outcome, for /metrics/summary's avg_processing_time_ms.
    R"(
ALTER TABLE raw_events ADD COLUMN processing_us integer;
)",
    // 5: the summary's counters (queries.hpp), which SqliteStore updates in
    // each writing transaction, so /metrics/summary no longer counts rows and
    // retention can delete them; and retention's index, which replaces the
    // one the counts scanned. The *_deltas tables stay empty here (one writer
    // updates the totals at once); reads share PostgreSQL's SQL.
    R"(
CREATE TABLE event_counts (
  pipeline TEXT NOT NULL, state TEXT NOT NULL, n INTEGER NOT NULL, PRIMARY KEY (pipeline, state)) WITHOUT ROWID;
CREATE TABLE event_count_deltas (pipeline TEXT NOT NULL, state TEXT NOT NULL, n INTEGER NOT NULL);
CREATE TABLE processing_minutes (
  pipeline TEXT NOT NULL, minute INTEGER NOT NULL, finished INTEGER NOT NULL, processing_us INTEGER NOT NULL,
  PRIMARY KEY (pipeline, minute)) WITHOUT ROWID;
CREATE TABLE processing_deltas (
  pipeline TEXT NOT NULL, minute INTEGER NOT NULL, finished INTEGER NOT NULL, processing_us INTEGER NOT NULL);
INSERT INTO event_counts (pipeline, state, n)
  SELECT pipeline, CASE WHEN state IN ('done', 'dead', 'discarded') THEN state ELSE 'in_flight' END, COUNT(*)
  FROM raw_events GROUP BY 1, 2;
DROP INDEX raw_events_pipeline_state;
CREATE INDEX raw_events_terminal ON raw_events (pipeline, state, updated_at)
  WHERE state IN ('done', 'dead', 'discarded');
)",
    // 6: the partial indexes' conditions as ORed comparisons
    // (unfinishedStatesOr, terminalStatesOr): SQLite built a temporary b-tree
    // for each IN list at every insert and state change.
    R"(
DROP INDEX raw_events_unfinished;
CREATE INDEX raw_events_unfinished ON raw_events(state, updated_at)
  WHERE (state = 'received' OR state = 'queued' OR state = 'processing' OR state = 'retrying');
DROP INDEX raw_events_terminal;
CREATE INDEX raw_events_terminal ON raw_events (pipeline, state, updated_at)
  WHERE (state = 'done' OR state = 'dead' OR state = 'discarded');
)",
};

}  // namespace

std::span<const char* const> sqliteMigrations() { return kMigrations; }

}  // namespace eventflow::store
