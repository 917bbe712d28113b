#pragma once
// Checks on a request body's raw JSON text that must run before the text is
// parsed into nlohmann::json: dump(), copies and comparisons of a document
// recurse once per level, so ~100,000 nested '[' overflow an io thread's
// stack (issue 11). And the messages for what the parser refuses without
// saying where: a number out of a double's range.

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace eventflow::http {

/// True when `text` never nests arrays and objects deeper than `max` (a
/// top-level object is depth 1). Stops at the first level past `max`, so
/// its cost is bounded by the text's length, never by its depth. Not a
/// validator: malformed text is the parser's to refuse.
bool nestsWithin(std::string_view text, std::size_t max);

/// Where the first value nested deeper than `max` sits, as a path such as
/// `properties.x[0][0]`, shortened to about `kMaxPathLength` characters.
std::string pathTooDeep(std::string_view text, std::size_t max);

/// The path of the first number whose value is beyond a double's range
/// (`1e400`, a 400-digit integer), or nullopt when there is none.
std::optional<std::string> pathOfHugeNumber(std::string_view text);

/// The elements of the JSON array `text` as views into it, or nullopt when
/// `text` is not an array whose elements can be told apart.
std::optional<std::vector<std::string_view>> arrayElements(std::string_view text);

inline constexpr std::size_t kMaxPathLength = 120;

}  // namespace eventflow::http
