#pragma once
// Events as NDJSON lines written to a file descriptor, shared by the file and
// stdout sinks: one JSON document per line, and one Result per event that
// says whether its whole line got out.

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <eventflow/plugin.hpp>

namespace eventflow::plugins::ndjson {

/// A batch as one buffer; ends[i] is the offset just past event i's newline.
struct Lines {
  std::string text;
  std::vector<std::size_t> ends;
};

/// The bodies of `events`, one compact JSON document and a newline each.
/// Invalid UTF-8 in a string becomes U+FFFD, so one bad byte costs a
/// character, not the event (nlohmann's dump would throw instead).
inline Lines render(std::span<Event* const> events) {
  Lines lines;
  lines.ends.reserve(events.size());
  for (const Event* event : events) {
    lines.text += event->body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    lines.text += '\n';
    lines.ends.push_back(lines.text.size());
  }
  return lines;
}

/// Writes all of `data` to `fd`, retrying interrupted and short writes.
/// Returns how many bytes got out; when fewer than data.size(), `error` holds
/// the errno that stopped it.
inline std::size_t writeAll(int fd, std::string_view data, int& error) {
  std::size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      error = n < 0 ? errno : EIO;
      return done;
    }
    done += static_cast<std::size_t>(n);
  }
  return done;
}

/// Results for events [first, first + count) of `lines`, of which the
/// bytes from `base` on were written `written` long: ok for each event whose
/// whole line got out, `failure` for the others, so the host marks the
/// written ones done and retries only the rest.
inline void settle(std::vector<Result>& results, const Lines& lines, std::size_t first, std::size_t count,
                   std::size_t base, std::size_t written, const Result& failure) {
  for (std::size_t i = first; i < first + count; ++i)
    results[i] = lines.ends[i] - base <= written ? Result::ok() : failure;
}

}  // namespace eventflow::plugins::ndjson
