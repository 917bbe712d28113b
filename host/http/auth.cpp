#include "http/auth.hpp"

#include <boost/beast/core/string.hpp>

#include <algorithm>

#include "base/ids.hpp"

namespace eventflow::http {

std::optional<Reply> authorize(const std::vector<config::ApiKey>& keys, const Request& req, std::string_view scope,
                               std::size_t* matched) {
  if (keys.empty() || scope.empty()) return std::nullopt;
  std::string key(req["X-API-Key"]);
  if (key.empty()) {
    // The scheme is case-insensitive (RFC 9110 §11.1): `bearer KEY` is a bearer token.
    const std::string auth(req[boost::beast::http::field::authorization]);
    if (auth.size() > 7 && boost::beast::iequals(boost::beast::string_view(auth.data(), 7), "Bearer "))
      key = auth.substr(7);
    key.erase(0, key.find_first_not_of(' '));
  }
  if (key.empty()) return error(401, "unauthorized", "an API key is required (Authorization: Bearer KEY or X-API-Key)");
  const std::string digest = sha256Hex(key);
  for (std::size_t i = 0; i < keys.size(); ++i) {
    const auto& k = keys[i];
    if (k.sha256 != digest) continue;
    const auto has = [&](std::string_view s) { return std::find(k.scopes.begin(), k.scopes.end(), s) != k.scopes.end(); };
    // Whoever runs the DLQ and the pipelines may read the metrics too.
    if (has(scope) || (scope == "metrics" && has("admin"))) {
      if (matched) *matched = i;
      return std::nullopt;
    }
    return error(403, "forbidden", "key '" + k.name + "' lacks the '" + std::string(scope) + "' scope");
  }
  return error(401, "unauthorized", "unknown API key");
}

}  // namespace eventflow::http
