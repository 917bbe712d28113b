#pragma once
// A request body's events as POST /events and /events/batch read them, apart
// from the transport so the ingest fuzzer (tests/fuzz/ingest_fuzz.cpp) runs
// exactly these steps: the depth pre-scan on the raw text before anything
// recursive touches it (issue 11), the parse, and per-item refusals in a
// batch (a JSON-array item or an NDJSON line refuses only itself).

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace eventflow::http {

enum class BodyFormat { single, json_array, ndjson };

/// Why a body, or one item of a batch, is refused: always a 400, with the
/// usual error body's code, message and field.
struct BodyRefusal {
  std::string code;
  std::string message;
  std::string field;
};

struct ParsedBody {
  /// The body as a whole is refused; nothing else is set.
  std::optional<BodyRefusal> refused;
  /// Each event in order; null where `item_refused` says why not.
  std::vector<nlohmann::json> docs;
  std::vector<std::optional<BodyRefusal>> item_refused;  // as many as docs
};

/// Never recurses deeper than `max_depth` (server.max_json_depth) levels,
/// whatever the body holds; a batch's array is one level more than its events.
ParsedBody parseBody(std::string_view body, BodyFormat format, std::size_t max_depth);

/// The refusal for text nested deeper than `max`: `where` names the item
/// ("item 3", "line 2"; empty: the body), `configured` is the limit as set.
BodyRefusal tooDeep(std::string_view text, std::size_t max, std::size_t configured, const std::string& where);

}  // namespace eventflow::http
