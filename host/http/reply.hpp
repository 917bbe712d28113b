#pragma once
// What a route answers, before the transport writes it: status, body and the
// few headers routes choose. The error body is DESIGN §3's
// `{"error":{"code","message","field"?}}`.

#include <boost/beast/http.hpp>

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace eventflow::http {

using Request = boost::beast::http::request<boost::beast::http::string_body>;

struct Reply {
  int status = 200;
  std::string body;
  std::string content_type = "application/json";
  std::string retry_after;
  std::string allow;  // 405: the route's methods
};

/// An answer with `body` already serialised.
Reply text(int status, std::string body, std::string content_type = "application/json");
Reply json(int status, const nlohmann::json& body);
Reply error(int status, const std::string& code, const std::string& message, const std::string& field = {});
/// `{"error":{"code","message","field"?}}` as a JSON value.
nlohmann::json errorBody(const std::string& code, const std::string& message, const std::string& field = {});
/// 503 store_unavailable with Retry-After: the store did not answer.
Reply unavailable(const std::string& why);

/// True when the Content-Type's media type (parameters ignored, any case) is `wanted`.
bool hasMediaType(const std::string& content_type, std::string_view wanted);

/// The request target's path, without the query string.
std::string_view pathOf(const Request& req);

}  // namespace eventflow::http
