#pragma once
// The queue is the transport, never the record (DESIGN §1): everything in it
// is also in the store, which refills it after a crash.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <eventflow/time.hpp>

namespace eventflow::queue {

struct Message {
  std::string id;
  std::string type;
  std::string pipeline;
  std::string payload;
  std::string correlation_id;
  SystemTime received_at;
  unsigned attempts = 0;        // attempts already made
  std::uint32_t sinks_done = 0; // bit i: sink i already took it (kept across retries)
};

class Queue {
 public:
  virtual ~Queue() = default;
  virtual void publish(const std::string& pipeline, std::vector<Message> messages) = 0;
  /// Up to `max` messages; waits at most `wait` when none is ready. Empty when closed.
  virtual std::vector<Message> take(const std::string& pipeline, std::size_t max, std::chrono::milliseconds wait) = 0;
  virtual std::size_t depth(const std::string& pipeline) const = 0;
  /// Wakes every waiting take(); later takes return what is left, then nothing.
  virtual void close() = 0;
};

/// In-process queue, one FIFO per pipeline. Ingest bounds it (admission control
/// on depth), so publish itself never refuses an accepted event.
class EmbeddedQueue final : public Queue {
 public:
  explicit EmbeddedQueue(const std::vector<std::string>& pipelines);
  void publish(const std::string& pipeline, std::vector<Message> messages) override;
  std::vector<Message> take(const std::string& pipeline, std::size_t max, std::chrono::milliseconds wait) override;
  std::size_t depth(const std::string& pipeline) const override;
  void close() override;

 private:
  struct Lane {
    mutable std::mutex mutex;
    std::condition_variable cv;
    std::deque<Message> items;
    bool closed = false;
  };
  std::map<std::string, std::unique_ptr<Lane>> lanes_;
};

}  // namespace eventflow::queue
