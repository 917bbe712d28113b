#pragma once
// The books of G8, per pipeline and in total: received = processed + dead +
// discarded + in flight, from the store (system-wide, whichever process
// asks), with the queue's length beside them.

#include <cstdint>
#include <map>
#include <string>

#include "base/expected.hpp"
#include "store/store.hpp"

namespace eventflow::queue { class Queue; }
namespace eventflow::pipeline { class Router; }

namespace eventflow::runtime {

struct Books {
  store::StateCounts counts{};  // received = processed + dead + discarded + in_flight
  std::size_t queue_length = 0;
  /// First delivery to done or dead, over the events that finished within
  /// the store's window (store::kProcessingWindow), rounded to 0.1 ms; 0 when
  /// none did.
  double avg_processing_time_ms = 0;
};

struct Ledger {
  std::map<std::string, Books> pipelines;  // every loaded pipeline, and any other the store knows
  Books total;
};

Expected<Ledger> ledger(store::Store& store, queue::Queue& queue, const pipeline::Router& router);

}  // namespace eventflow::runtime
