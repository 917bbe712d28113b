#pragma once
// What the plugin tests share beyond the SDK's eventflow/testing.hpp (the fake
// Context and makeEvent plugin authors get): ids, batches, refusals.

#include <cstdio>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include <eventflow/plugin.hpp>
#include <eventflow/testing.hpp>

namespace eventflow::test {

using testing::FakeContext;
using testing::makeEvent;

/// A version-4-shaped event id with `n` in its last group.
inline std::string eventId(int n) {
  char id[37];
  std::snprintf(id, sizeof id, "00000000-0000-4000-8000-%012d", n);
  return id;
}

/// `sink.write` over the events of `batch`, as the host passes them.
inline std::vector<Result> writeBatch(Sink& sink, std::vector<Event>& batch) {
  std::vector<Event*> pointers;
  for (auto& e : batch) pointers.push_back(&e);
  return sink.write(std::span<Event* const>(pointers.data(), pointers.size()));
}

/// What constructing `Plugin` from `config` throws (std::invalid_argument's
/// message), or "accepted".
template <class Plugin>
std::string refusal(const nlohmann::json& config, Context& context) {
  try {
    Plugin plugin(config, context);
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "accepted";
}

}  // namespace eventflow::test
