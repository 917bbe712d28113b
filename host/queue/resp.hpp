#pragma once
// RESP2 replies parsed from a receive buffer (redis_queue.cpp's reader, on
// its own so that a fuzzer can feed it bytes without a socket).

#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace eventflow::queue {

// One RESP2 reply. kind is the RESP marker: '+' simple string, '-' error
// (text), ':' integer (number), '$' bulk string (text, or null), '*' array
// (items, or null).
struct Reply {
  char kind = 0;
  bool null = false;
  std::string text;
  long long number = 0;
  std::vector<Reply> items;

  bool isError() const { return kind == '-'; }
};

/// Parses replies from the bytes `receive` brings. What a read brings beyond
/// the current reply stays buffered for the next one.
class RespReader {
 public:
  /// Fills at most `room` bytes at `into`; returns how many, <= 0 when the
  /// peer closed. May throw (a socket's timeout).
  using Receive = std::function<int(char* into, std::size_t room)>;

  explicit RespReader(Receive receive) : receive_(std::move(receive)) {}

  /// The next reply. Throws Poco::Redis::RedisException when the bytes break
  /// the protocol or the peer closed; error replies are returned.
  Reply read() { return read(0); }

  /// Nothing received is left unparsed.
  bool drained() const { return pos_ == end_; }
  /// Drops a drained buffer's bytes; frees it if one huge reply grew it.
  void release();
  /// Forgets what is buffered (a new connection).
  void clear() { pos_ = end_ = 0; }

  static constexpr long long kMaxBulk = 512LL * 1024 * 1024;  // Redis's own proto-max-bulk-len
  static constexpr std::size_t kMaxLine = 1024 * 1024;
  static constexpr int kMaxDepth = 16;

 private:
  static constexpr std::size_t kInitialBuffer = 64 * 1024;
  static constexpr std::size_t kKeptBuffer = 4 * 1024 * 1024;  // a bigger one is freed once drained

  void need(std::size_t want);
  std::string_view line();
  static long long number(std::string_view digits);
  static std::optional<std::size_t> length(std::string_view digits, long long max, const char* what);
  Reply read(int depth);

  Receive receive_;
  std::string in_;  // received bytes: [pos_, end_) not yet parsed
  std::size_t pos_ = 0;
  std::size_t end_ = 0;
};

}  // namespace eventflow::queue
