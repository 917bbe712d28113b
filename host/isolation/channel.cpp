#include "isolation/channel.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace eventflow::isolation {
namespace {

bool knownFrame(std::uint8_t t) {
  switch (static_cast<Frame>(t)) {
    case Frame::init: case Frame::batch: case Frame::ready: case Frame::error: case Frame::answer:
    case Frame::log: case Frame::count: case Frame::observe:
      return true;
  }
  return false;
}

}  // namespace

void appendFrame(std::string& out, Frame type, std::string_view payload) {
  const auto n = static_cast<std::uint32_t>(payload.size());
  const char head[5] = {static_cast<char>(n & 0xff), static_cast<char>((n >> 8) & 0xff),
                        static_cast<char>((n >> 16) & 0xff), static_cast<char>((n >> 24) & 0xff),
                        static_cast<char>(type)};
  out.append(head, sizeof head);
  out.append(payload);
}

bool writeAll(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

FrameReader::Fill FrameReader::fill(int fd) {
  if (pos_ > 0 && pos_ == buffer_.size()) {
    buffer_.clear();
    pos_ = 0;
  }
  char chunk[65536];
  for (;;) {
    const ssize_t n = ::read(fd, chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return Fill::eof;
    buffer_.append(chunk, static_cast<std::size_t>(n));
    return Fill::data;
  }
}

std::optional<std::pair<Frame, std::string>> FrameReader::next() {
  if (broken_ || buffer_.size() - pos_ < 5) return std::nullopt;
  const auto* p = reinterpret_cast<const unsigned char*>(buffer_.data() + pos_);
  const std::uint32_t n = p[0] | (p[1] << 8) | (p[2] << 16) | (std::uint32_t{p[3]} << 24);
  if (n > kMaxFrame || !knownFrame(p[4])) {
    broken_ = true;
    return std::nullopt;
  }
  if (buffer_.size() - pos_ - 5 < n) return std::nullopt;
  std::pair<Frame, std::string> frame{static_cast<Frame>(p[4]), buffer_.substr(pos_ + 5, n)};
  pos_ += 5 + n;
  if (pos_ == buffer_.size()) {
    buffer_.clear();
    pos_ = 0;
  }
  return frame;
}

std::string encodeEvents(std::span<Event* const> events) {
  nlohmann::json list = nlohmann::json::array();
  for (const Event* e : events)
    list.push_back({{"i", e->id}, {"t", e->type}, {"c", e->correlation_id}, {"p", e->pipeline}, {"a", e->attempt},
                    {"r", std::chrono::duration_cast<std::chrono::nanoseconds>(e->received_at.time_since_epoch()).count()},
                    {"b", e->body}});
  return list.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

bool decodeEvents(std::string_view payload, std::vector<Event>& out, std::string& error) {
  const auto list = nlohmann::json::parse(payload, nullptr, false);
  if (!list.is_array()) {
    error = "a batch is not a JSON list";
    return false;
  }
  out.clear();
  out.reserve(list.size());
  for (const auto& j : list) {
    if (!j.is_object() || !j.contains("b") || !j.value("i", nlohmann::json()).is_string()) {
      error = "a batch item is not an event";
      return false;
    }
    Event e;
    e.id = j["i"].get<std::string>();
    e.type = j.value("t", "");
    e.correlation_id = j.value("c", "");
    e.pipeline = j.value("p", "");
    e.attempt = j.value("a", 1u);
    e.received_at = std::chrono::system_clock::time_point(
        std::chrono::duration_cast<std::chrono::system_clock::duration>(std::chrono::nanoseconds(j.value("r", std::int64_t{0}))));
    e.body = j["b"];
    out.push_back(std::move(e));
  }
  return true;
}

// Each result: 0 (ok), [0, body] (ok, enriched), [1 reject | 2 retry, reason, error_type].
std::string encodeResults(const std::vector<Result>& results, const std::vector<Event>& events, bool with_bodies) {
  nlohmann::json list = nlohmann::json::array();
  for (std::size_t i = 0; i < results.size(); ++i) {
    const Result& r = results[i];
    if (r.isOk())
      list.push_back(with_bodies ? nlohmann::json::array({0, events[i].body}) : nlohmann::json(0));
    else
      list.push_back({r.status() == Result::Status::reject ? 1 : 2, r.reason(), r.errorType()});
  }
  return list.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

bool decodeResults(std::string_view payload, std::span<Event* const> events, std::vector<Result>& results) {
  auto list = nlohmann::json::parse(payload, nullptr, false);
  if (!list.is_array() || list.size() != events.size()) return false;
  results.clear();
  results.reserve(list.size());
  for (std::size_t i = 0; i < list.size(); ++i) {
    auto& r = list[i];
    if (r == 0) {
      results.push_back(Result::ok());
    } else if (r.is_array() && r.size() == 2 && r[0] == 0) {
      events[i]->body = std::move(r[1]);
      results.push_back(Result::ok());
    } else if (r.is_array() && r.size() == 3 && (r[0] == 1 || r[0] == 2) && r[1].is_string() && r[2].is_string()) {
      results.push_back(r[0] == 1 ? Result::reject(r[1].get<std::string>(), r[2].get<std::string>())
                                  : Result::retry(r[1].get<std::string>(), r[2].get<std::string>()));
    } else {
      return false;
    }
  }
  return true;
}

}  // namespace eventflow::isolation
