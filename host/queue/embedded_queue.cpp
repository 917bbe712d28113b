#include "queue/queue.hpp"

#include <algorithm>

namespace eventflow::queue {

EmbeddedQueue::EmbeddedQueue(const std::vector<std::string>& pipelines) {
  for (const auto& p : pipelines) lanes_.emplace(p, std::make_unique<Lane>());
}

Expected<void> EmbeddedQueue::publish(const std::string& pipeline, std::vector<Message> messages) {
  auto it = lanes_.find(pipeline);
  if (it == lanes_.end()) return makeError("no pipeline '" + pipeline + "'");
  if (messages.empty()) return {};
  Lane& lane = *it->second;
  {
    std::lock_guard lock(lane.mutex);
    for (auto& m : messages) lane.items.push_back(std::move(m));
  }
  if (messages.size() == 1) lane.cv.notify_one();
  else lane.cv.notify_all();
  return {};
}

void EmbeddedQueue::ack(const std::string& pipeline, const std::vector<std::string>& tokens) {
  auto it = lanes_.find(pipeline);
  if (it == lanes_.end()) return;
  std::lock_guard lock(it->second->mutex);
  it->second->taken -= std::min(it->second->taken, tokens.size());
}

void EmbeddedQueue::redeliver(const std::string& pipeline, Message message) {
  if (auto it = lanes_.find(pipeline); it != lanes_.end()) {
    std::lock_guard lock(it->second->mutex);
    if (it->second->taken > 0) --it->second->taken;
  }
  std::vector<Message> one;
  one.push_back(std::move(message));
  (void)publish(pipeline, std::move(one));
}

std::vector<Message> EmbeddedQueue::take(const std::string& pipeline, unsigned, std::size_t max,
                                         std::chrono::milliseconds wait) {
  std::vector<Message> out;
  auto it = lanes_.find(pipeline);
  if (it == lanes_.end()) return out;
  Lane& lane = *it->second;
  std::unique_lock lock(lane.mutex);
  lane.cv.wait_for(lock, wait, [&] { return lane.closed || !lane.items.empty(); });
  while (!lane.items.empty() && out.size() < max) {
    out.push_back(std::move(lane.items.front()));
    lane.items.pop_front();
  }
  lane.taken += out.size();
  return out;
}

std::size_t EmbeddedQueue::depth(const std::string& pipeline) {
  auto it = lanes_.find(pipeline);
  if (it == lanes_.end()) return 0;
  std::lock_guard lock(it->second->mutex);
  return it->second->items.size() + it->second->taken;  // not yet acknowledged, as Redis's XLEN counts
}

std::size_t EmbeddedQueue::pending(const std::string& pipeline) {
  auto it = lanes_.find(pipeline);
  if (it == lanes_.end()) return 0;
  std::lock_guard lock(it->second->mutex);
  return it->second->taken;
}

void EmbeddedQueue::close() {
  for (auto& [name, lane] : lanes_) {
    {
      std::lock_guard lock(lane->mutex);
      lane->closed = true;
    }
    lane->cv.notify_all();
  }
}

}  // namespace eventflow::queue
