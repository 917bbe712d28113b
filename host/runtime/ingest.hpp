#pragma once
// Ingest: envelope, routing, admission, durable record (group commit), then
// publish. A 202 is only ever answered after the row is committed (G1).

#include <atomic>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "pipeline/pipeline.hpp"

#include "store/store.hpp"

namespace eventflow::store { class GroupCommitter; }
namespace eventflow::queue { class Queue; }
namespace eventflow::metrics { class Metrics; }

namespace eventflow::runtime {

struct IngestResult {
  int status = 202;  // 202 accepted, 200 duplicate, 409 conflict, 422 invalid, 503 unavailable
  nlohmann::json body;
};

class Ingestor {
 public:
  Ingestor(const pipeline::Router& router, store::GroupCommitter& committer, queue::Queue& queue,
           metrics::Metrics& metrics, std::size_t max_depth);

  /// One result per document, in order. Documents are consumed.
  std::vector<IngestResult> ingest(std::vector<nlohmann::json> docs, const std::string& correlation_id);

 private:
  void publish(std::vector<store::RawEvent>& rows, const std::vector<store::InsertStatus>& statuses);

  const pipeline::Router& router_;
  store::GroupCommitter& committer_;
  queue::Queue& queue_;
  metrics::Metrics& metrics_;
  std::size_t max_depth_;
  long long kill_before_publish_ = 0;
  std::atomic<long long> commits_{0};
};

/// `{"error":{"code","message","field"?}}`
nlohmann::json errorBody(const std::string& code, const std::string& message, const std::string& field = {});

}  // namespace eventflow::runtime
