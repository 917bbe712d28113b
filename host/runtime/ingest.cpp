#include "runtime/ingest.hpp"

#include <csignal>
#include <cstdlib>
#include <map>

#include "base/ids.hpp"
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
                   metrics::Metrics& metrics, std::size_t max_depth)
    : router_(router), committer_(committer), queue_(queue), metrics_(metrics), max_depth_(max_depth) {
  if (const char* n = std::getenv("EVENTFLOW_TEST_KILL_BEFORE_PUBLISH")) kill_before_publish_ = std::atoll(n);
  committer_.afterCommit([this](std::vector<store::RawEvent>& rows, const std::vector<store::InsertStatus>& statuses) {
    publish(rows, statuses);
  });
}

void Ingestor::publish(std::vector<store::RawEvent>& rows, const std::vector<store::InsertStatus>& statuses) {
  // Test hook (fault tests only): die between the commit and the publish on
  // the Nth group commit, the window the relay exists to repair.
  if (kill_before_publish_ > 0 && ++commits_ == kill_before_publish_) ::raise(SIGKILL);
  // One publish per pipeline per group commit, not one per request.
  std::map<std::string, std::vector<queue::Message>> out;
  for (std::size_t k = 0; k < rows.size(); ++k) {
    if (statuses[k] != store::InsertStatus::inserted) continue;
    auto& row = rows[k];
    out[row.pipeline].push_back(queue::Message{row.id, row.type, row.pipeline, std::move(row.payload),
                                               row.correlation_id, row.received_at, 0, 0, {}, 1});
  }
  for (auto& [pipeline, messages] : out) {
    // Already durable: a failed publish is the relay's to repair, not the client's.
    if (auto sent = queue_.publish(pipeline, std::move(messages)); !sent)
      log::debug("publish failed; the relay will republish from the store", {{"pipeline", pipeline}, {"error", sent.error().message}});
  }
}

std::vector<IngestResult> Ingestor::ingest(std::vector<nlohmann::json> docs, const std::string& correlation_id) {
  std::vector<IngestResult> results(docs.size());
  std::vector<store::RawEvent> rows;
  std::vector<std::size_t> row_index;
  const auto now = std::chrono::system_clock::now();
  const std::string received_at = formatRfc3339(now);
  std::map<std::string, std::size_t> depth;  // per pipeline, read once per request
  for (std::size_t i = 0; i < docs.size(); ++i) {
    auto& doc = docs[i];
    // The hash is of the document as sent, so a re-post without event_id
    // defaults still compares equal.
    const std::string sha = sha256Hex(doc.dump());
    pipeline::Envelope env;
    if (auto err = pipeline::checkEnvelope(doc, now, correlation_id, env)) {
      results[i] = {422, errorBody(err->code, err->message, err->field)};
      continue;
    }
    const pipeline::Pipeline* p = router_.route(env.type);
    if (!p) {
      results[i] = {422, errorBody("no_pipeline", "no pipeline matches event_type '" + env.type + "'", "event_type")};
      continue;
    }
    auto [it, fresh] = depth.try_emplace(p->name(), 0);
    if (fresh) it->second = queue_.depth(p->name());
    if (it->second >= max_depth_) {
      results[i] = {503, errorBody("overloaded", "pipeline '" + p->name() + "' is at its queue bound; retry later")};
      continue;
    }
    ++it->second;
    rows.push_back({env.id, env.type, p->name(), doc.dump(), sha, env.correlation_id, now});
    row_index.push_back(i);
  }
  if (rows.empty()) return results;

  Expected<std::vector<store::InsertStatus>> statuses = makeError("not committed");
  try {
    statuses = committer_.insert(rows).get();
  } catch (const std::exception& e) {
    statuses = makeError(e.what());
  }
  if (!statuses) {
    for (std::size_t k : row_index)
      results[k] = {503, errorBody("store_unavailable", "the event store is unavailable; retry later")};
    return results;
  }
  for (std::size_t k = 0; k < rows.size(); ++k) {
    const auto& row = rows[k];
    auto& result = results[row_index[k]];
    switch ((*statuses)[k]) {
      case store::InsertStatus::inserted:
        result = {202, {{"event_id", row.id}, {"status", "accepted"}, {"pipeline", row.pipeline}, {"received_at", received_at}}};
        metrics_.received(row.pipeline, row.type).Increment();
        break;
      case store::InsertStatus::duplicate:
        result = {200, {{"event_id", row.id}, {"status", "duplicate"}, {"pipeline", row.pipeline}}};
        metrics_.duplicate(row.pipeline).Increment();
        break;
      case store::InsertStatus::conflict:
        result = {409, errorBody("conflict", "event_id " + row.id + " was already accepted with a different body", "event_id")};
        break;
    }
  }
  return results;
}

}  // namespace eventflow::runtime
