#pragma once
// API keys (DESIGN §3): who may use a route. The one place keys are read
// from a request and checked against server.api_keys.

#include <cstddef>
#include <optional>
#include <string_view>
#include <vector>

#include "config/config.hpp"
#include "http/reply.hpp"

namespace eventflow::http {

/// Nothing when `req` may use a route needing `scope` (or no keys are
/// configured); else the 401 (no key, unknown key) or 403 (key without the
/// scope) to answer. The key comes as `X-API-Key` or `Authorization: Bearer`
/// (scheme in any case); an `admin` key also reads what needs `metrics`.
/// When allowed and `matched` is given, it is set to the key's index in
/// `keys` (left alone with no keys configured): its rate limit's bucket.
std::optional<Reply> authorize(const std::vector<config::ApiKey>& keys, const Request& req, std::string_view scope,
                               std::size_t* matched = nullptr);

}  // namespace eventflow::http
