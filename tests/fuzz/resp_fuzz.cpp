// libFuzzer harness: the RESP2 reply parser the Redis queue reads every
// reply with (host/queue/resp.*). The first byte sets how many bytes each
// receive brings (1 to 256), so replies split across reads are covered; the
// rest is what "Redis" sent. Replies are read until the bytes run out or
// break the protocol, which must be an exception, never a crash.

#include <Poco/Exception.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "queue/resp.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::size_t chunk = std::size_t{data[0]} + 1;
  const char* next = reinterpret_cast<const char*>(data + 1);
  std::size_t left = size - 1;
  eventflow::queue::RespReader reader([&](char* into, std::size_t room) {
    const std::size_t n = std::min({chunk, room, left});
    std::memcpy(into, next, n);
    next += n;
    left -= n;
    return static_cast<int>(n);
  });
  try {
    for (int i = 0; i < 1000; ++i) {
      const auto reply = reader.read();
      if (reader.drained()) reader.release();
    }
  } catch (const Poco::Exception&) {
    // A protocol error or the bytes ran out ("Redis closed the connection").
  }
  return 0;
}
