#pragma once
// What POST /events and /events/batch answer for runtime's ingest outcomes:
// the HTTP side of runtime::IngestOutcome (statuses, bodies, Retry-After).

#include <cstddef>
#include <optional>
#include <vector>

#include "http/reply.hpp"
#include "runtime/ingest.hpp"

namespace eventflow::http {

/// 202 accepted, 200 duplicate, 409 conflict, 422 invalid or no pipeline,
/// 503 overloaded or store unavailable (with Retry-After).
Reply singleReply(const runtime::IngestResult& result, const std::string& received_at);

/// `{"accepted","rejected","results":[…]}` in the batch's order, each result
/// with its `status_code`: `answer` holds the items that reached ingest (item
/// `good_index[k]` is `answer.results[k]`), `refused` the 400s of those that
/// did not parse (`total` items in all). 202 unless nothing was accepted and
/// the store was unavailable (503 with Retry-After).
Reply batchReply(const runtime::IngestAnswer& answer, const std::vector<std::size_t>& good_index,
                 const std::vector<std::optional<Reply>>& refused, std::size_t total);

}  // namespace eventflow::http
