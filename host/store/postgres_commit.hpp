#pragma once
// The PostgreSQL store's group commit (postgres_commit.cpp).

#include <span>
#include <string>
#include <vector>

#include "pg/connection.hpp"
#include "store/store.hpp"

namespace eventflow::store::postgres {

/// The session of the connections commitOn runs on. Their statements are
/// prepared, and PostgreSQL caches a generic plan that guesses ten rows for
/// an unnest of the parameters. With sequential scans off that plan keeps to
/// the primary key however few rows raw_events had when it was made (a plan
/// made at a near-empty table once scanned the whole table: 116 ms per
/// 126-row batch at 200,000 rows). With nested loops off the join of a
/// batch's arrays to raw_events is hashed: once statistics said that nearly
/// every row was finished, the cached plan was a nested loop rescanning the
/// arrays for each row (1.9 s for 2,000 state changes; in a mixed run half
/// the throughput, from the first automatic ANALYZE on).
inline constexpr const char* kCommitterSession = "SET enable_seqscan = off; SET enable_nestloop = off";

/// The statement that applies a commit's state changes, given as the nine
/// arrays of transitionArrays in postgres_commit.cpp.
const std::string& transitionsStatement();

/// Records `inserts` and applies `transitions` on `conn`, in one statement
/// where it can (a lone statement is its own transaction) and in one
/// transaction otherwise.
Expected<std::vector<InsertStatus>> commitOn(pg::Connection& conn, std::span<const RawEvent> inserts,
                                             std::span<const Transition> transitions);

}  // namespace eventflow::store::postgres
