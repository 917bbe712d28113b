#pragma once
// The SQLite store's schema: one script per version, applied in order.

#include <span>

namespace eventflow::store {

/// Each entry is one schema version; never edit one that has shipped.
/// Version 1 also creates processed_events (tables::processedEventsDdl).
std::span<const char* const> sqliteMigrations();

}  // namespace eventflow::store
