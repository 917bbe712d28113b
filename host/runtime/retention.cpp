#include "runtime/retention.hpp"

#include <algorithm>
#include <set>
#include <string>

#include "base/log.hpp"
#include "base/throttle.hpp"
#include "metrics/metrics.hpp"
#include "store/store.hpp"

namespace eventflow::runtime {

Retention::Retention(store::Store& store, const pipeline::LiveRouter& router, metrics::Metrics& metrics,
                     std::chrono::milliseconds period)
    : store_(store), router_(router), metrics_(metrics), period_(period) {}

Retention::~Retention() { stop(); }

void Retention::start() {
  loop_.start("ef-retention", period_, [this] { runOnce(); });
}

void Retention::stop() { loop_.stop(); }

std::size_t Retention::runOnce() {
  static Throttle warnings(std::chrono::minutes(1));
  std::uint64_t held = 0;
  if (auto folded = store_.compactCounts(); !folded && warnings.allow(held))
    log::warn("cannot fold the summary counters", {{"error", folded.error().message}});
  // Every pipeline with events in the store, configured or not any more.
  auto counts = store_.counts();
  if (!counts) {
    if (warnings.allow(held)) log::warn("retention cannot read the store", {{"error", counts.error().message}});
    return 0;
  }
  const auto generation = router_.current();
  std::set<std::string> names;
  for (const auto& [name, c] : *counts)
    if (c.processed + c.dead + c.discarded > 0) names.insert(name);
  std::size_t total = 0;
  for (const auto& name : names) {
    const auto& configured = generation->router.pipelines();
    const auto p = std::find_if(configured.begin(), configured.end(), [&](const auto& c) { return c->name() == name; });
    const config::RetentionSpec spec =
        p != configured.end() ? (*p)->spec().retention.over(generation->retention) : generation->retention;
    const std::pair<store::State, std::optional<config::Millis>> states[] = {
        {store::State::done, spec.done}, {store::State::dead, spec.dead}, {store::State::discarded, spec.discarded}};
    for (const auto& [state, keep] : states) {
      if (!keep || *keep == config::RetentionSpec::kForever) continue;
      for (std::size_t batch = 0; batch < kBatchesPerPass; ++batch) {
        if (loop_.stopping()) return total;
        auto deleted = store_.prune(name, state, *keep, kBatch);
        if (!deleted) {
          if (warnings.allow(held))
            log::warn("retention cannot delete old events",
                      {{"pipeline", name}, {"state", store::toString(state)}, {"error", deleted.error().message}});
          break;
        }
        if (*deleted > 0) metrics_.retentionPruned(name, store::toString(state)).Increment(static_cast<double>(*deleted));
        total += *deleted;
        if (*deleted < kBatch) break;
      }
    }
  }
  if (total > 0) log::debug("retention deleted old terminal events", {{"count", std::to_string(total)}});
  return total;
}

}  // namespace eventflow::runtime
