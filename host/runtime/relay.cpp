#include "runtime/relay.hpp"

#include <map>

#include "base/log.hpp"
#include "metrics/metrics.hpp"
#include "queue/queue.hpp"
#include "runtime/recover.hpp"
#include "store/store.hpp"

namespace eventflow::runtime {

namespace {
// While a pipeline's stream holds more than this, its old unfinished events
// are most likely still in it (a backlog), not lost: republishing them would
// only double the work.
constexpr std::size_t kBacklog = 1000;
constexpr std::size_t kBatch = 1000;
}  // namespace

Relay::Relay(store::Store& store, queue::Queue& queue, const pipeline::LiveRouter& router, metrics::Metrics& metrics,
             std::chrono::milliseconds republish_after)
    : store_(store), queue_(queue), router_(router), metrics_(metrics), republish_after_(republish_after) {}

Relay::~Relay() { stop(); }

void Relay::start() {
  loop_.start("ef-relay", std::max(std::chrono::milliseconds(500), republish_after_ / 4), [this] { runOnce(); });
}

void Relay::stop() { loop_.stop(); }

std::size_t Relay::runOnce() {
  std::size_t backlog = 0;
  const auto generation = router_.current();  // one generation for the whole pass
  for (const auto& p : generation->router.pipelines()) {
    const std::size_t depth = queue_.depth(p->name());
    metrics_.queueDepth(p->name()).Set(static_cast<double>(depth));
    backlog = std::max(backlog, depth);
  }
  if (backlog > kBacklog) return 0;
  auto stale = store_.stale(republish_after_, kBatch);
  if (!stale) {
    log::warn("relay cannot read the store", {{"error", stale.error().message}});
    return 0;
  }
  std::map<std::string, std::vector<queue::Message>> out;
  for (auto& e : *stale) {
    const auto* p = generation->router.route(e.type);
    if (!p) continue;  // no pipeline takes it any more; recovery at start dead-letters it
    out[p->name()].push_back(messageOf(std::move(e), p->name()));
    out[p->name()].back().maybe_settled = true;
  }
  std::size_t sent = 0;
  for (auto& [name, messages] : out) {
    const std::size_t n = messages.size();
    if (queue_.publish(name, std::move(messages))) sent += n;
  }
  if (sent > 0) log::info("relay published unfinished events again", {{"count", std::to_string(sent)}});
  return sent;
}

}  // namespace eventflow::runtime
