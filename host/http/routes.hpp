#pragma once
// Every route with the methods it answers and the scope it needs: the one
// table the dispatcher, the 405's Allow header, HEAD, the worker role's 404
// and authorisation read.

#include <ostream>

#include <boost/beast/http/verb.hpp>

#include <string_view>

namespace eventflow::http {

enum class RouteId {
  events,
  events_batch,
  event,
  health,
  health_live,
  health_ready,
  metrics,
  metrics_summary,
  pipelines,
  admin_reload,
  dlq,
  dlq_replay,
  dlq_item,
  dlq_item_replay,
  openapi,
  docs,
};

struct Route {
  RouteId id;
  std::string_view pattern;  // `{id}` stands for one path segment
  std::string_view allow;    // GET implies HEAD
  std::string_view scope;    // an API key's scope it needs when keys are configured; empty: open
  bool api = false;          // served by the api and all roles only
  bool probe = false;        // health and metrics: answered on their own threads
};

/// The route `path` names (the first match: exact paths come before
/// patterns), or null.
const Route* matchRoute(std::string_view path);

/// True when `r` answers `method` (HEAD wherever GET).
bool allows(const Route& r, boost::beast::http::verb method);

}  // namespace eventflow::http
