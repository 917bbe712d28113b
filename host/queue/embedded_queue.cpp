#include "queue/queue.hpp"

#include <algorithm>

namespace eventflow::queue {

EmbeddedQueue::EmbeddedQueue(const std::vector<std::string>& pipelines) : lanes_(pipelines) {}

void EmbeddedQueue::addPipeline(const std::string& pipeline) {
  if (!lanes_.add(pipeline) || !closed_) return;
  Lane* lane = lanes_.find(pipeline);
  std::lock_guard lock(lane->mutex);
  lane->closed = true;
}

Expected<void> EmbeddedQueue::publish(const std::string& pipeline, std::vector<Message> messages) {
  Lane* found = lanes_.find(pipeline);
  if (!found) return makeError("no pipeline '" + pipeline + "'");
  if (messages.empty()) return {};
  Lane& lane = *found;
  {
    std::lock_guard lock(lane.mutex);
    for (auto& m : messages) {
      lane.bytes += footprint(m);
      lane.items.push_back(std::move(m));
    }
  }
  if (messages.size() == 1) lane.cv.notify_one();
  else lane.cv.notify_all();
  return {};
}

void EmbeddedQueue::ack(const std::string& pipeline, const std::vector<std::string>& tokens) {
  Lane* lane = lanes_.find(pipeline);
  if (!lane) return;
  std::lock_guard lock(lane->mutex);
  lane->taken -= std::min(lane->taken, tokens.size());
}

void EmbeddedQueue::redeliver(const std::string& pipeline, Message message) {
  if (Lane* lane = lanes_.find(pipeline)) {
    std::lock_guard lock(lane->mutex);
    if (lane->taken > 0) --lane->taken;
  }
  std::vector<Message> one;
  one.push_back(std::move(message));
  (void)publish(pipeline, std::move(one));
}

std::vector<Message> EmbeddedQueue::take(const std::string& pipeline, unsigned, std::size_t max,
                                         std::chrono::milliseconds wait) {
  std::vector<Message> out;
  Lane* found = lanes_.find(pipeline);
  if (!found) return out;
  Lane& lane = *found;
  std::unique_lock lock(lane.mutex);
  lane.cv.wait_for(lock, wait, [&] { return lane.closed || !lane.items.empty(); });
  while (!lane.items.empty() && out.size() < max) {
    lane.bytes -= std::min(lane.bytes, footprint(lane.items.front()));
    out.push_back(std::move(lane.items.front()));
    lane.items.pop_front();
  }
  lane.taken += out.size();
  return out;
}

std::size_t EmbeddedQueue::depth(const std::string& pipeline) {
  Lane* lane = lanes_.find(pipeline);
  if (!lane) return 0;
  std::lock_guard lock(lane->mutex);
  return lane->items.size() + lane->taken;  // not yet acknowledged, as Redis's XLEN counts
}

std::size_t EmbeddedQueue::bytes(const std::string& pipeline) {
  Lane* lane = lanes_.find(pipeline);
  if (!lane) return 0;
  std::lock_guard lock(lane->mutex);
  return lane->bytes;
}

std::size_t EmbeddedQueue::pending(const std::string& pipeline) {
  Lane* lane = lanes_.find(pipeline);
  if (!lane) return 0;
  std::lock_guard lock(lane->mutex);
  return lane->taken;
}

void EmbeddedQueue::close() {
  closed_ = true;
  for (const auto& [name, lane] : lanes_.all()) {
    {
      std::lock_guard lock(lane->mutex);
      lane->closed = true;
    }
    lane->cv.notify_all();
  }
}

}  // namespace eventflow::queue
