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

Ingestor::Ingestor(const pipeline::LiveRouter& router, store::GroupCommitter& committer, queue::Queue& queue,
                   metrics::Metrics& metrics, std::size_t max_depth, std::uint64_t max_bytes,
                   pipeline::EnvelopeOptions envelope)
    : router_(router), committer_(committer), queue_(queue), metrics_(metrics), max_depth_(max_depth),
      max_bytes_(max_bytes), envelope_(envelope) {
  if (const char* n = std::getenv("EVENTFLOW_TEST_KILL_BEFORE_PUBLISH")) kill_before_publish_ = std::atoll(n);
  committer_.afterCommit([this](std::vector<store::RawEvent>& rows, const std::vector<store::InsertStatus>& statuses) {
    publish(rows, statuses);
  });
  publisher_ = std::thread([this] {
    nameThread("ef-publish");
    publishLoop();
  });
}

namespace {

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
      // (one Redis round trip) then carries several of them, and a worker
      // takes them together (kLinger).
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
    IngestAnswer answer;
    std::vector<std::size_t> row_index;
    Done done;
  };
  auto pending = std::make_shared<Pending>();
  auto& results = pending->answer.results;
  const auto generation = router_.current();  // one generation routes the whole batch
  results.resize(docs.size());
  std::vector<store::RawEvent> rows;
  const auto now = std::chrono::system_clock::now();
  pending->answer.received_at = formatRfc3339(now);
  // Per pipeline, read once per request, then counting this request's events.
  struct Waiting {
    std::size_t depth = 0;
    std::uint64_t bytes = 0;
  };
  std::map<std::string, Waiting> waiting;
  for (std::size_t i = 0; i < docs.size(); ++i) {
    auto& doc = docs[i];
    auto& result = results[i];
    // The hash is of the document as sent, so a re-post without event_id
    // defaults still compares equal; but with its id in lower case, so the
    // same UUID in upper case is a duplicate and not a conflict.
    pipeline::canonicaliseEventId(doc);
    std::string sent = doc.dump();
    const std::string sha = sha256Hex(sent);
    if (hasNul(sent)) {
      result.outcome = IngestOutcome::invalid;
      result.invalid = {"invalid_character",
                        "the event contains the character U+0000 (\\u0000), which the store cannot keep", ""};
      continue;
    }
    pipeline::Envelope env;
    if (auto err = pipeline::checkEnvelope(doc, now, correlation_id, env, envelope_)) {
      result.outcome = IngestOutcome::invalid;
      result.invalid = std::move(*err);
      continue;
    }
    const pipeline::Pipeline* p = generation->router.route(env.type);
    if (!p) {
      result.outcome = IngestOutcome::no_pipeline;
      result.event_type = env.type;
      continue;
    }
    result.pipeline = p->name();
    auto [it, fresh] = waiting.try_emplace(p->name());
    if (fresh) it->second = {queue_.depth(p->name()), queue_.bytes(p->name())};
    if (it->second.depth >= max_depth_ || it->second.bytes >= max_bytes_) {
      result.outcome = IngestOutcome::overloaded;
      continue;
    }
    result.event_id = env.id;
    result.event_type = env.type;
    rows.push_back({env.id, env.type, p->name(), env.rewritten ? doc.dump() : std::move(sent), sha, env.correlation_id, now});
    const auto& row = rows.back();
    ++it->second.depth;
    // What its queue message will hold.
    it->second.bytes += queue::footprint({row.id, row.type, row.pipeline, row.payload, row.correlation_id});
    pending->row_index.push_back(i);
  }
  pending->done = std::move(done);
  if (rows.empty()) return pending->done(std::move(pending->answer));

  const auto count = static_cast<std::int64_t>(rows.size());
  uncommitted_ += count;
  committer_.insert(std::move(rows), [this, pending, count](Expected<std::vector<store::InsertStatus>> statuses) {
    uncommitted_ -= count;
    for (std::size_t k = 0; k < pending->row_index.size(); ++k) {
      auto& result = pending->answer.results[pending->row_index[k]];
      if (!statuses) {
        result.outcome = IngestOutcome::unavailable;
        continue;
      }
      switch ((*statuses)[k]) {
        case store::InsertStatus::inserted:
          result.outcome = IngestOutcome::accepted;
          metrics_.received(result.pipeline, result.event_type).Increment();
          break;
        case store::InsertStatus::duplicate:
          result.outcome = IngestOutcome::duplicate;
          metrics_.duplicate(result.pipeline).Increment();
          break;
        case store::InsertStatus::conflict:
          result.outcome = IngestOutcome::conflict;
          break;
      }
    }
    pending->done(std::move(pending->answer));
  });
}

}  // namespace eventflow::runtime
