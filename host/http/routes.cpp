#include "http/routes.hpp"

#include <algorithm>

namespace eventflow::http {
namespace {

constexpr Route kRoutes[] = {
    {RouteId::events, "/events", "POST", "ingest", true},
    {RouteId::events_batch, "/events/batch", "POST", "ingest", true},
    {RouteId::event, "/events/{id}", "GET, HEAD", "ingest", true},
    {RouteId::health, "/health", "GET, HEAD", "", false, true},
    {RouteId::health_live, "/health/live", "GET, HEAD", "", false, true},
    {RouteId::health_ready, "/health/ready", "GET, HEAD", "", false, true},
    {RouteId::metrics, "/metrics", "GET, HEAD", "metrics", false, true},
    {RouteId::metrics_summary, "/metrics/summary", "GET, HEAD", "metrics", false, true},
    {RouteId::pipelines, "/pipelines", "GET, HEAD", "admin", true},
    {RouteId::admin_reload, "/admin/reload", "POST", "admin", false},
    {RouteId::dlq, "/dlq", "GET, HEAD", "admin", true},
    {RouteId::dlq_replay, "/dlq/replay", "POST", "admin", true},
    {RouteId::dlq_item, "/dlq/{id}", "GET, HEAD, DELETE", "admin", true},
    {RouteId::dlq_item_replay, "/dlq/{id}/replay", "POST", "admin", true},
    {RouteId::openapi, "/openapi.json", "GET, HEAD", ""},
    {RouteId::docs, "/docs", "GET, HEAD", ""},
};

}  // namespace

const Route* matchRoute(std::string_view path) {
  for (const auto& r : kRoutes) {
    std::string_view pattern = r.pattern, rest = path;
    bool ok = true;
    while (ok && !pattern.empty()) {
      if (pattern.starts_with("{id}")) {
        const auto slash = rest.find('/');
        const auto segment = rest.substr(0, slash);
        ok = !segment.empty();
        pattern.remove_prefix(4);
        rest.remove_prefix(segment.size());
      } else {
        const auto n = std::min(pattern.find('{'), pattern.size());
        ok = rest.substr(0, n) == pattern.substr(0, n);
        pattern.remove_prefix(n);
        rest.remove_prefix(std::min(n, rest.size()));
      }
    }
    if (ok && rest.empty()) return &r;
  }
  return nullptr;
}

bool allows(const Route& r, boost::beast::http::verb method) {
  const auto verb = boost::beast::http::to_string(method);
  const std::string_view name(verb.data(), verb.size());
  std::string_view allow = r.allow;
  while (!allow.empty()) {
    const auto comma = allow.find(',');
    if (allow.substr(0, comma) == name) return true;
    if (comma == std::string_view::npos) break;
    allow.remove_prefix(comma + 1);
    while (allow.starts_with(' ')) allow.remove_prefix(1);
  }
  return false;
}

}  // namespace eventflow::http
