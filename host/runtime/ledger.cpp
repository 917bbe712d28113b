#include "runtime/ledger.hpp"

#include <cmath>

#include "pipeline/pipeline.hpp"
#include "queue/queue.hpp"

namespace eventflow::runtime {
namespace {

double average(double sum_ms, std::uint64_t n) {
  return n ? std::round(sum_ms / static_cast<double>(n) * 10) / 10 : 0.0;
}

}  // namespace

Expected<Ledger> ledger(store::Store& store, queue::Queue& queue, const pipeline::Router& router) {
  auto counts = store.counts();
  if (!counts) return counts.error();
  for (const auto& p : router.pipelines()) (void)(*counts)[p->name()];
  Ledger out;
  for (const auto& [name, c] : *counts) {
    out.pipelines[name] = {.counts = c,
                           .queue_length = queue.depth(name),
                           .avg_processing_time_ms = average(c.processing_ms_sum, c.finished_recently)};
    out.total.counts += c;
    out.total.queue_length += out.pipelines[name].queue_length;
  }
  out.total.avg_processing_time_ms = average(out.total.counts.processing_ms_sum, out.total.counts.finished_recently);
  return out;
}

}  // namespace eventflow::runtime
