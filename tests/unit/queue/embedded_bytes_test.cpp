// The embedded queue counts the memory its waiting messages hold
// (Queue::bytes), which ingest bounds by queue.max_bytes.

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

#include "queue/queue.hpp"

using eventflow::queue::EmbeddedQueue;
using eventflow::queue::footprint;
using eventflow::queue::Message;

namespace {

Message message(const std::string& id, std::size_t payload_bytes) {
  Message m;
  m.id = id;
  m.type = "purchase";
  m.pipeline = "p";
  m.payload = std::string(payload_bytes, 'x');
  return m;
}

TEST(EmbeddedQueueBytes, PublishedMessagesCountUntilTakenAndARedeliveryCountsAgain) {
  EmbeddedQueue queue({"p", "q"});
  EXPECT_EQ(queue.bytes("p"), 0u);
  std::vector<Message> batch{message("a", 1000), message("b", 20000), message("c", 300)};
  const std::size_t a = footprint(batch[0]), b = footprint(batch[1]), c = footprint(batch[2]);
  EXPECT_GT(b, 20000u) << "a message's footprint holds its payload";
  ASSERT_TRUE(queue.publish("p", std::move(batch)));
  EXPECT_EQ(queue.bytes("p"), a + b + c);
  EXPECT_EQ(queue.bytes("q"), 0u) << "per pipeline";

  auto taken = queue.take("p", 0, 2, std::chrono::milliseconds(0));
  ASSERT_EQ(taken.size(), 2u);
  EXPECT_EQ(queue.bytes("p"), c) << "taken messages are the worker's, bounded by its batch";
  EXPECT_EQ(queue.depth("p"), 3u) << "depth still counts them until acknowledged";

  queue.redeliver("p", std::move(taken[1]));
  EXPECT_EQ(queue.bytes("p"), b + c);
  queue.ack("p", {"a"});
  auto rest = queue.take("p", 0, 10, std::chrono::milliseconds(0));
  EXPECT_EQ(rest.size(), 2u);
  EXPECT_EQ(queue.bytes("p"), 0u);
  EXPECT_EQ(queue.bytes("nope"), 0u);
}

}  // namespace
