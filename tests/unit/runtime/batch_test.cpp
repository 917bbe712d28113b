// How many events a worker takes at once (runtime::batchFor): bounded by
// time per event, as before, and now by payload size too, so that a queue
// of large events is not read and parsed 512 at a time.

#include <gtest/gtest.h>

#include "runtime/workers.hpp"

using eventflow::runtime::batchFor;

namespace {

constexpr double kMs = 1e6;  // nanoseconds
constexpr double kKiB = 1024, kMiB = 1024 * 1024;

TEST(WorkerBatch, BeforeAnyMeasurementFour) {
  EXPECT_EQ(batchFor(0, 0), 4u);
  EXPECT_EQ(batchFor(0, 1 * kMiB), 4u);
}

TEST(WorkerBatch, AFastPipelineOfSmallEventsTakesFiveHundredTwelve) {
  EXPECT_EQ(batchFor(0.03 * kMs, 300), 512u);
  EXPECT_EQ(batchFor(0.001 * kMs, 0), 512u);
}

TEST(WorkerBatch, ASlowPipelineTakesAboutAQuarterSecondOfWork) {
  EXPECT_EQ(batchFor(50 * kMs, 300), 5u);   // a webhook at 50 ms an event
  EXPECT_EQ(batchFor(1 * kMs, 300), 250u);
  EXPECT_EQ(batchFor(10'000 * kMs, 300), 1u);  // never none
}

TEST(WorkerBatch, LargeEventsTakeAboutEightMebibytesAtOnce) {
  EXPECT_EQ(batchFor(0.03 * kMs, 1 * kMiB), 8u);
  EXPECT_EQ(batchFor(0.03 * kMs, 64 * kKiB), 128u);
  EXPECT_EQ(batchFor(0.03 * kMs, 16 * kKiB), 512u);
  EXPECT_EQ(batchFor(0.03 * kMs, 100 * kMiB), 1u);  // larger than the budget: one at a time, never none
  // The tighter bound wins.
  EXPECT_EQ(batchFor(50 * kMs, 1 * kMiB), 5u);
}

}  // namespace
