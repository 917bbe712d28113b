#include "http/ingest_reply.hpp"

#include <algorithm>
#include <string_view>

namespace eventflow::http {
namespace {

using runtime::IngestOutcome;

int statusOf(IngestOutcome outcome) {
  switch (outcome) {
    case IngestOutcome::accepted: return 202;
    case IngestOutcome::duplicate: return 200;
    case IngestOutcome::conflict: return 409;
    case IngestOutcome::invalid:
    case IngestOutcome::no_pipeline: return 422;
    case IngestOutcome::overloaded:
    case IngestOutcome::unavailable: return 503;
  }
  return 500;
}

std::string dump(const nlohmann::json& body) {
  return body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// Appends `text` as a JSON string. The answers to accepted events are built
// as text: through nlohmann::json they cost a dozen allocations each, on the
// committer thread every request waits on.
void appendQuoted(std::string& out, std::string_view text) {
  // A pipeline's name is whatever bytes its YAML file held, UTF-8 or not:
  // text beyond ASCII goes through nlohmann::json, which replaces invalid
  // UTF-8 as every other answer does.
  if (std::any_of(text.begin(), text.end(), [](char c) { return static_cast<unsigned char>(c) >= 0x80; })) {
    out += dump(std::string(text));
    return;
  }
  out += '"';
  for (const char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (u < 0x20) {
      static constexpr char kHex[] = "0123456789abcdef";
      out += "\\u00";
      out += kHex[u >> 4];
      out += kHex[u & 0x0f];
    } else {
      out += c;
    }
  }
  out += '"';
}

std::string bodyOf(const runtime::IngestResult& r, const std::string& received_at) {
  switch (r.outcome) {
    case IngestOutcome::accepted: {
      std::string body;
      body.reserve(160);
      body = "{\"event_id\":";
      appendQuoted(body, r.event_id);
      body += ",\"pipeline\":";
      appendQuoted(body, r.pipeline);
      body += ",\"received_at\":";
      appendQuoted(body, received_at);
      body += ",\"status\":\"accepted\"}";
      return body;
    }
    case IngestOutcome::duplicate:
      return dump({{"event_id", r.event_id}, {"status", "duplicate"}, {"pipeline", r.pipeline}});
    case IngestOutcome::conflict:
      return dump(errorBody("conflict", "event_id " + r.event_id + " was already accepted with a different body", "event_id"));
    case IngestOutcome::invalid:
      return dump(errorBody(r.invalid.code, r.invalid.message, r.invalid.field));
    case IngestOutcome::no_pipeline:
      return dump(errorBody("no_pipeline", "no pipeline matches event_type '" + r.event_type + "'", "event_type"));
    case IngestOutcome::overloaded:
      return dump(errorBody("overloaded", "pipeline '" + r.pipeline + "' is at its queue bound; retry later"));
    case IngestOutcome::unavailable:
      return dump(errorBody("store_unavailable", "the event store is unavailable; retry later"));
  }
  return dump(errorBody("internal", "unknown ingest outcome"));
}

// `body`, a serialised JSON object, with `"status_code":status` added last.
std::string withStatusCode(std::string body, int status) {
  if (body.size() < 2 || body.back() != '}') return body;
  body.pop_back();
  if (body.size() > 1) body += ',';
  body += "\"status_code\":";
  body += std::to_string(status);
  body += '}';
  return body;
}

}  // namespace

Reply singleReply(const runtime::IngestResult& result, const std::string& received_at) {
  Reply reply = text(statusOf(result.outcome), bodyOf(result, received_at));
  if (reply.status == 503) reply.retry_after = "1";
  return reply;
}

// Assembled as text from each item's serialised answer.
Reply batchReply(const runtime::IngestAnswer& answer, const std::vector<std::size_t>& good_index,
                 const std::vector<std::optional<Reply>>& refused, std::size_t total) {
  std::vector<std::string> ordered(total);
  std::size_t accepted = 0, rejected = 0, size = 0;
  bool unavailable_seen = false;
  for (std::size_t k = 0; k < answer.results.size(); ++k) {
    const auto& r = answer.results[k];
    const int status = statusOf(r.outcome);
    if (status == 202 || status == 200) ++accepted;
    else ++rejected;
    unavailable_seen = unavailable_seen || status == 503;
    ordered[good_index[k]] = withStatusCode(bodyOf(r, answer.received_at), status);
    size += ordered[good_index[k]].size() + 1;
  }
  for (std::size_t i = 0; i < total && i < refused.size(); ++i) {
    if (!refused[i]) continue;
    ordered[i] = withStatusCode(refused[i]->body, refused[i]->status);
    size += ordered[i].size() + 1;
    ++rejected;
  }
  std::string body;
  body.reserve(size + 64);
  body += "{\"accepted\":" + std::to_string(accepted) + ",\"rejected\":" + std::to_string(rejected) + ",\"results\":[";
  for (std::size_t i = 0; i < total; ++i) {
    if (i) body += ',';
    body += ordered[i];
  }
  body += "]}";
  Reply reply = text(accepted > 0 || !unavailable_seen ? 202 : 503, std::move(body));
  if (unavailable_seen) reply.retry_after = "1";
  return reply;
}

}  // namespace eventflow::http
