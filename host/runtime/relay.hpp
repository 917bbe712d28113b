#pragma once
// The relay repairs the queue from the store: an event recorded in raw_events
// but not terminal and untouched for relay.republish_after (a crash between
// commit and publish, Redis losing its data) is published again. Duplicates
// it creates are absorbed by idempotency (G3).

#include <chrono>

#include "base/periodic.hpp"
#include "pipeline/live_router.hpp"

namespace eventflow::store { class Store; }
namespace eventflow::queue { class Queue; }
namespace eventflow::metrics { class Metrics; }

namespace eventflow::runtime {

class Relay {
 public:
  Relay(store::Store& store, queue::Queue& queue, const pipeline::LiveRouter& router, metrics::Metrics& metrics,
        std::chrono::milliseconds republish_after);
  ~Relay();
  void start();
  void stop();
  /// One pass; returns how many events were published again.
  std::size_t runOnce();

 private:
  store::Store& store_;
  queue::Queue& queue_;
  const pipeline::LiveRouter& router_;
  metrics::Metrics& metrics_;
  std::chrono::milliseconds republish_after_;
  Periodic loop_;
};

}  // namespace eventflow::runtime
