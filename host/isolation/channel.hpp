#pragma once
// The wire between the host and an isolated plugin's child process: frames
// of [u32 length, little-endian][u8 type][payload] over a socketpair, JSON
// payloads, and one shared page through which the child says which event of
// a batch it is in, so that a crash or a hang is pinned on exactly that one
// without a message per event.

#include <atomic>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <eventflow/plugin.hpp>

namespace eventflow::isolation {

enum class Frame : std::uint8_t {
  init = 'I',     // host → child: what to load, its config, limits
  batch = 'B',    // host → child: events to run
  ready = 'R',    // child → host: the instance is made
  error = 'E',    // child → host: it could not be (the message)
  answer = 'A',   // child → host: one result per event of the batch
  log = 'L',      // child → host: Context::log
  count = 'C',    // child → host: Context::count
  observe = 'O',  // child → host: Context::observe
};

/// A frame larger than this is a broken peer, not a big batch (a worker
/// hands a plugin about 8 MiB of payload at once at most, runtime::batchFor).
inline constexpr std::uint32_t kMaxFrame = 256u << 20;

/// The page both processes map. `calling` is the 1-based index in the batch
/// of the event whose plugin call is under way (0: none yet); the host
/// clears it before it sends a batch.
struct Shared {
  std::atomic<std::uint32_t> calling{0};
};
static_assert(std::atomic<std::uint32_t>::is_always_lock_free);

/// The fds the child finds its channel and its shared page on.
inline constexpr int kChannelFd = 3;
inline constexpr int kSharedFd = 4;
/// The child's exit code when an allocation failed (limits.memory reached).
inline constexpr int kExitOutOfMemory = 87;

/// Appends one frame to `out`.
void appendFrame(std::string& out, Frame type, std::string_view payload);

/// Writes all of `bytes`; false when the peer is gone. Never raises SIGPIPE.
bool writeAll(int fd, std::string_view bytes);

/// Splits a byte stream into frames.
class FrameReader {
 public:
  enum class Fill { data, eof };
  /// One read(2) of what is there (blocks if nothing is).
  Fill fill(int fd);
  /// Bytes from elsewhere (tests).
  void feed(std::string_view bytes) { buffer_.append(bytes); }
  /// The next whole frame, if one is buffered. A frame over kMaxFrame or of
  /// an unknown type makes broken() true and yields nothing more.
  std::optional<std::pair<Frame, std::string>> next();
  bool broken() const { return broken_; }

 private:
  std::string buffer_;
  std::size_t pos_ = 0;
  bool broken_ = false;
};

/// Events to a batch payload and back. Only what a plugin sees crosses.
std::string encodeEvents(std::span<Event* const> events);
/// False (and `error` set) on a payload that is not a list of events.
bool decodeEvents(std::string_view payload, std::vector<Event>& out, std::string& error);

/// One result per event; an ok enricher's result carries the event's body.
std::string encodeResults(const std::vector<Result>& results, const std::vector<Event>& events, bool with_bodies);
/// Results into `results` and enriched bodies into `events`; false on a
/// payload that does not hold exactly one result per event.
bool decodeResults(std::string_view payload, std::span<Event* const> events, std::vector<Result>& results);

}  // namespace eventflow::isolation
