#pragma once

#include <chrono>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include <eventflow/plugin.hpp>

namespace Poco::Net {
class HTTPClientSession;
}

namespace eventflow::plugins {

/// JSON Schema (draft 7) of the sink's stage config. Here rather than in
/// plugin.cpp so tests check configs against the schema the host sees.
inline constexpr char kHttpSinkConfigSchema[] = R"json({
  "$schema": "http://json-schema.org/draft-07/schema#",
  "type": "object",
  "properties": {
    "url": {
      "description": "Where each event goes: http://host[:port][/path][?query]. https:// is refused for now: put a local TLS-terminating proxy in front.",
      "type": "string",
      "pattern": "^https?://[^/?#]+"
    },
    "timeout": {
      "description": "Limit on connecting and on each wait for the server to accept or send bytes (\"250ms\", \"5s\", \"1m\"; at most 1h; default 10s). A server that answers slowly but steadily may take longer in total.",
      "type": "string",
      "pattern": "^[0-9]+(\\.[0-9]+)?(ms|s|m|h|d)?$"
    },
    "method": {
      "description": "HTTP method of each request (default POST).",
      "enum": ["POST", "PUT"]
    },
    "headers": {
      "description": "Headers added to every request, e.g. Authorization. Content-Type (application/json) may be replaced; Idempotency-Key, X-Correlation-ID, Host, Content-Length, Transfer-Encoding and Connection are set by the sink.",
      "type": "object",
      "propertyNames": {"pattern": "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$"},
      "additionalProperties": {"type": "string", "pattern": "^[^\\r\\n]*$"}
    }
  },
  "required": ["url"],
  "additionalProperties": false
})json";

/// Webhook sink: one HTTP request per event carrying its body as JSON, with
/// `Idempotency-Key: <event id>` and `X-Correlation-ID`, over one keep-alive
/// connection per instance.
///
/// 2xx is ok. 408, 429 and 5xx are retry ("http_status_<code>"), as are
/// connection failures and timeouts ("sink_unavailable"); a Retry-After of at
/// most 2 s is waited out and the event sent once more within the call. Any
/// other status is a reject ("http_status_<code>") naming the start of the
/// response body. After a retry the rest of the call is answered retry without
/// being sent; rejects concern one event only.
///
/// Plain http only: Poco's HTTPS client takes its certificate policy from the
/// process-wide SSLManager, which a plugin should not configure for the host.
/// Writing to a connection the server closed raises SIGPIPE, which the host
/// ignores.
class HttpSink final : public Sink {
 public:
  HttpSink(const nlohmann::json& config, Context& context);
  ~HttpSink() override;
  std::vector<Result> write(std::span<Event* const> events) override;

 private:
  struct Reply;

  Result deliver(const Event& event, std::chrono::seconds& wait_budget, std::string& detail);
  Reply exchange(const Event& event, const std::string& body);
  Reply attempt(const Event& event, const std::string& body);
  std::string said(const std::string& detail) const { return target_ + ": " + detail; }

  Context& context_;
  std::string method_ = "POST";
  std::string path_;
  std::string target_;  // "POST http://host:port", without path or query, which may hold secrets
  std::string timeout_text_ = "10s";
  std::vector<std::pair<std::string, std::string>> headers_;
  std::unique_ptr<Poco::Net::HTTPClientSession> session_;
};

}  // namespace eventflow::plugins
