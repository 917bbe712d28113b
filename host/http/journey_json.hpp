#pragma once
// GET /events/{id}: the store's typed journey as the API's JSON document.

#include <nlohmann/json.hpp>

#include "store/store.hpp"

namespace eventflow::http {

/// The journey's columns, the event document, its dead_letter and processed
/// parts where it has them, and "history": received, the first and the
/// latest failure, replays, and where the event is now.
nlohmann::json journeyJson(const store::Journey& journey);

}  // namespace eventflow::http
