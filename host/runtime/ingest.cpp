#include "runtime/ingest.hpp"

#include <algorithm>
#include <array>
#include <csignal>
#include <cstdlib>
#include <map>
#include <memory>
#include <string_view>

#include "base/ids.hpp"
#include "base/threads.hpp"
#include "base/log.hpp"
#include "metrics/metrics.hpp"
#include "pipeline/envelope.hpp"
#include "queue/queue.hpp"
#include "store/group_commit.hpp"

namespace eventflow::runtime {

nlohmann::json errorBody(const std::string& code, const std::string& message, const std::string& field) {
  nlohmann::json e{{"code", code}, {"message", message}};
  if (!field.empty()) e["field"] = field;
  return {{"error", std::move(e)}};
}

Ingestor::Ingestor(const pipeline::Router& router, store::GroupCommitter& committer, queue::Queue& queue,
                   metrics::Metrics& metrics, std::size_t max_depth, pipeline::EnvelopeOptions envelope)
    : router_(router), committer_(committer), queue_(queue), metrics_(metrics), max_depth_(max_depth),
      envelope_(envelope) {
  if (const char* n = std::getenv("EVENTFLOW_TEST_KILL_BEFORE_PUBLISH")) kill_before_publish_ = std::atoll(n);
  committer_.afterCommit([this](std::vector<store::RawEvent>& rows, const std::vector<store::InsertStatus>& statuses) {
    publish(rows, statuses);
  });
  publisher_ = std::thread([this] {
    nameThread("ef-publish");
    publishLoop();
  });
}

std::string withStatusCode(std::string body, int status) {
  if (body.size() < 2 || body.back() != '}') return body;
  body.pop_back();
  if (body.size() > 1) body += ',';
  body += "\"status_code\":";
  body += std::to_string(status);
  body += '}';
  return body;
}

namespace {

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

// True when JSON text holds an escaped U+0000: a "\u0000" whose backslash is
// not itself escaped. PostgreSQL's jsonb refuses it, and one such event would
// fail the group commit of every request sharing it.
bool hasNul(std::string_view json) {
  for (auto at = json.find("\\u0000"); at != std::string_view::npos; at = json.find("\\u0000", at + 1)) {
    std::size_t slashes = 0;
    while (slashes < at && json[at - 1 - slashes] == '\\') ++slashes;
    if (slashes % 2 == 0) return true;
  }
  return false;
}

}  // namespace

Ingestor::~Ingestor() { stop(); }

void Ingestor::stop() {
  {
    std::lock_guard lock(publish_mutex_);
    if (stopped_) return;
    stopped_ = true;
  }
  publish_cv_.notify_all();
  if (publisher_.joinable()) publisher_.join();
}

void Ingestor::publish(std::vector<store::RawEvent>& rows, const std::vector<store::InsertStatus>& statuses) {
  // Test hook (fault tests only): die between the commit and the publish on
  // the Nth group commit, the window the relay exists to repair.
  if (kill_before_publish_ > 0 && ++commits_ == kill_before_publish_) ::raise(SIGKILL);
  std::map<std::string, std::vector<queue::Message>> out;
  for (std::size_t k = 0; k < rows.size(); ++k) {
    if (statuses[k] != store::InsertStatus::inserted) continue;
    auto& row = rows[k];
    out[row.pipeline].push_back({.id = row.id,
                                 .type = row.type,
                                 .pipeline = row.pipeline,
                                 .payload = std::move(row.payload),
                                 .correlation_id = row.correlation_id,
                                 .received_at = row.received_at});
  }
  if (out.empty()) return;
  {
    std::lock_guard lock(publish_mutex_);
    if (!stopped_) {
      for (auto& [pipeline, messages] : out) {
        auto& to = pending_[pipeline];
        pending_count_ += messages.size();
        to.insert(to.end(), std::make_move_iterator(messages.begin()), std::make_move_iterator(messages.end()));
      }
      // While it lingers the publisher wakes by itself; a wake-up per commit
      // would cost more than the round trips the linger saves.
      if (publisher_idle_ || pending_count_ >= kPublishBatch) publish_cv_.notify_one();
      return;
    }
  }
  send(out);  // after stop(): nobody else will
}

void Ingestor::publishLoop() {
  // Its own thread, so a group commit's answers never wait on the queue's
  // round trip, and commits that land together go out as one publish.
  for (;;) {
    std::map<std::string, std::vector<queue::Message>> out;
    {
      std::unique_lock lock(publish_mutex_);
      publisher_idle_ = true;
      publish_cv_.wait(lock, [&] { return stopped_ || !pending_.empty(); });
      publisher_idle_ = false;
      if (pending_.empty()) return;  // stopped and drained
      // Linger a moment for the group commits still landing: one publish
      // (one Redis round trip) then carries several of them.
      publish_cv_.wait_for(lock, kLinger, [&] { return stopped_ || pending_count_ >= kPublishBatch; });
      out.swap(pending_);
      pending_count_ = 0;
    }
    send(out);
  }
}

void Ingestor::send(std::map<std::string, std::vector<queue::Message>>& out) {
  // Already durable: a failed publish is the relay's to repair, not the client's.
  if (auto sent = queue_.publishAll(std::move(out)); !sent)
    log::debug("publish failed; the relay will republish from the store", {{"error", sent.error().message}});
}

void Ingestor::ingest(std::vector<nlohmann::json> docs, const std::string& correlation_id, Done done) {
  // What the answer needs once the commit is in; shared with the callback.
  struct Pending {
    std::vector<IngestResult> results;
    std::vector<std::size_t> row_index;
    std::vector<std::array<std::string, 3>> rows;  // id, type, pipeline
    std::string received_at;
    Done done;
  };
  auto pending = std::make_shared<Pending>();
  pending->results.resize(docs.size());
  std::vector<store::RawEvent> rows;
  const auto now = std::chrono::system_clock::now();
  pending->received_at = formatRfc3339(now);
  std::map<std::string, std::size_t> depth;  // per pipeline, read once per request
  for (std::size_t i = 0; i < docs.size(); ++i) {
    auto& doc = docs[i];
    // The hash is of the document as sent, so a re-post without event_id
    // defaults still compares equal; but with its id in lower case, so the
    // same UUID in upper case is a duplicate and not a conflict.
    pipeline::canonicaliseEventId(doc);
    std::string sent = doc.dump();
    const std::string sha = sha256Hex(sent);
    if (hasNul(sent)) {
      pending->results[i] = {422, dump(errorBody("invalid_character", "the event contains the character U+0000 (\\u0000), "
                                                                      "which the store cannot keep"))};
      continue;
    }
    pipeline::Envelope env;
    if (auto err = pipeline::checkEnvelope(doc, now, correlation_id, env, envelope_)) {
      pending->results[i] = {422, dump(errorBody(err->code, err->message, err->field))};
      continue;
    }
    const pipeline::Pipeline* p = router_.route(env.type);
    if (!p) {
      pending->results[i] = {422, dump(errorBody("no_pipeline", "no pipeline matches event_type '" + env.type + "'", "event_type"))};
      continue;
    }
    auto [it, fresh] = depth.try_emplace(p->name(), 0);
    if (fresh) it->second = queue_.depth(p->name());
    if (it->second >= max_depth_) {
      pending->results[i] = {503, dump(errorBody("overloaded", "pipeline '" + p->name() + "' is at its queue bound; retry later"))};
      continue;
    }
    ++it->second;
    pending->rows.push_back({env.id, env.type, p->name()});
    rows.push_back({env.id, env.type, p->name(), env.rewritten ? doc.dump() : std::move(sent), sha, env.correlation_id, now});
    pending->row_index.push_back(i);
  }
  pending->done = std::move(done);
  if (rows.empty()) return pending->done(std::move(pending->results));

  const auto count = static_cast<std::int64_t>(rows.size());
  uncommitted_ += count;
  committer_.insert(std::move(rows), [this, pending, count](Expected<std::vector<store::InsertStatus>> statuses) {
    uncommitted_ -= count;
    auto& results = pending->results;
    if (!statuses) {
      for (std::size_t k : pending->row_index)
        results[k] = {503, dump(errorBody("store_unavailable", "the event store is unavailable; retry later"))};
      return pending->done(std::move(results));
    }
    for (std::size_t k = 0; k < pending->rows.size(); ++k) {
      const auto& [id, type, pipeline] = pending->rows[k];
      auto& result = results[pending->row_index[k]];
      switch ((*statuses)[k]) {
        case store::InsertStatus::inserted:
          result.status = 202;
          result.body.reserve(160);
          result.body = "{\"event_id\":";
          appendQuoted(result.body, id);
          result.body += ",\"pipeline\":";
          appendQuoted(result.body, pipeline);
          result.body += ",\"received_at\":";
          appendQuoted(result.body, pending->received_at);
          result.body += ",\"status\":\"accepted\"}";
          metrics_.received(pipeline, type).Increment();
          break;
        case store::InsertStatus::duplicate:
          result = {200, dump({{"event_id", id}, {"status", "duplicate"}, {"pipeline", pipeline}})};
          metrics_.duplicate(pipeline).Increment();
          break;
        case store::InsertStatus::conflict:
          result = {409, dump(errorBody("conflict", "event_id " + id + " was already accepted with a different body", "event_id"))};
          break;
      }
    }
    pending->done(std::move(results));
  });
}

}  // namespace eventflow::runtime
