#pragma once
// Retention (DESIGN §4 `retention`, issue 16): terminal events older than
// their state's retention are deleted in small batches, each its own short
// transaction, so ingest and the workers never wait long on the store. The
// books (G8) do not change: the summary reads counters that pruning leaves
// alone. The same pass folds the PostgreSQL counters' deltas.

#include <chrono>
#include <cstddef>

#include "base/periodic.hpp"
#include "pipeline/live_router.hpp"

namespace eventflow::store { class Store; }
namespace eventflow::metrics { class Metrics; }

namespace eventflow::runtime {

class Retention {
 public:
  /// Rows per transaction: a batch holds SQLite's write lock for about 5 ms.
  static constexpr std::size_t kBatch = 500;
  /// Batches per pass and pipeline state before the pass moves on.
  static constexpr std::size_t kBatchesPerPass = 40;

  Retention(store::Store& store, const pipeline::LiveRouter& router, metrics::Metrics& metrics,
            std::chrono::milliseconds period = std::chrono::seconds(1));
  ~Retention();
  void start();
  void stop();
  /// One pass; returns how many events were deleted.
  std::size_t runOnce();

 private:
  store::Store& store_;
  const pipeline::LiveRouter& router_;
  metrics::Metrics& metrics_;
  std::chrono::milliseconds period_;
  Periodic loop_;
};

}  // namespace eventflow::runtime
