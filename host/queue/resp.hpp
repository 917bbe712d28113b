#pragma once
// RESP2, the protocol alone: commands encoded into a buffer, replies parsed
// from a receive buffer. No socket here (redis_connection.hpp has it), so
// unit tests and a fuzzer feed it bytes.
//
// RESP is encoded and parsed here rather than with Poco::Redis's types, a
// deliberate departure: profiled at 18k events/s, the ingest publisher spent
// ~7 µs of CPU per event (0.13 cores) building a Poco::Redis::Array of ~13
// heap-allocated BulkStrings per XADD, toString()-ing it and reading each
// reply through createRedisType and an istream, and the workers paid a
// dynamic_cast per field decoding XREADGROUP replies. Here commands are
// encoded straight into one buffer and replies parsed into plain values whose
// strings move on into the Messages.

#include <charconv>
#include <cstddef>
#include <initializer_list>
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

/// One command as RESP: its arguments are encoded as they are added, and
/// the *N header, once N is known, when it is appended to the output.
class Command {
 public:
  Command() = default;
  Command(std::initializer_list<std::string_view> args) {
    for (auto a : args) *this << a;
  }

  Command& operator<<(std::string_view arg) {
    char digits[24];
    const auto n = std::to_chars(digits, digits + sizeof digits, arg.size()).ptr;
    args_ += '$';
    args_.append(digits, n);
    args_ += "\r\n";
    args_ += arg;
    args_ += "\r\n";
    ++count_;
    return *this;
  }

  Command& operator<<(long long number) {
    char digits[24];
    return *this << std::string_view(digits, std::to_chars(digits, digits + sizeof digits, number).ptr - digits);
  }

  void appendTo(std::string& out) const {
    char digits[24];
    out += '*';
    out.append(digits, std::to_chars(digits, digits + sizeof digits, count_).ptr);
    out += "\r\n";
    out += args_;
  }

  /// Keeps the buffer, so one Command can encode many commands in turn.
  void clear() {
    args_.clear();
    count_ = 0;
  }

 private:
  std::string args_;
  std::size_t count_ = 0;
};

/// The value as a string, moved out of the reply ('$', '+', ':'); empty otherwise.
std::string bulk(Reply&& value);
/// The value as a number (':', or digits in '$' and '+'); 0 otherwise.
long long integer(const Reply& value);
/// The reply if it is an array and not null.
Reply* array(Reply& value);

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
