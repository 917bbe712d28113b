#pragma once
// The PostgreSQL store's group commit (postgres_commit.cpp).

#include <span>
#include <vector>

#include "pg/connection.hpp"
#include "store/store.hpp"

namespace eventflow::store::postgres {

/// Records `inserts` and applies `transitions` on `conn`, in one statement
/// where it can (a lone statement is its own transaction) and in one
/// transaction otherwise.
Expected<std::vector<InsertStatus>> commitOn(pg::Connection& conn, std::span<const RawEvent> inserts,
                                             std::span<const Transition> transitions);

}  // namespace eventflow::store::postgres
