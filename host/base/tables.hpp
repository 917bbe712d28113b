#pragma once
// The processed_events table of DESIGN §6, written once. The stores create it
// (an event's journey reads it) and the postgres and sqlite sinks create it
// when their table is missing, under another name if configured; all four
// must agree, so they all take it from here. Standard library only: the sinks
// include it too.

#include <string>
#include <string_view>

namespace eventflow::tables {

enum class Engine { sqlite, postgresql };

/// CREATE TABLE IF NOT EXISTS `table` with processed_events' columns.
/// `table` must already be a checked identifier.
inline std::string processedEventsDdl(Engine engine, std::string_view table = "processed_events") {
  const bool pg = engine == Engine::postgresql;
  const char* const uuid = pg ? "uuid" : "TEXT";
  const char* const text = pg ? "text" : "TEXT";
  const char* const time = pg ? "timestamptz" : "TEXT";
  const char* const json = pg ? "jsonb" : "TEXT";
  const char* const integer = pg ? "integer" : "INTEGER";
  const std::string t = text;
  return "CREATE TABLE IF NOT EXISTS " + std::string(table) + " (event_id " + uuid + " PRIMARY KEY, event_type " + t +
         " NOT NULL, user_id " + t + ", timestamp " + time + ", properties " + json + ", enriched_data " + json +
         ", pipeline " + t + " NOT NULL, processed_at " + time + " NOT NULL, attempts " + integer + " NOT NULL)";
}

}  // namespace eventflow::tables
