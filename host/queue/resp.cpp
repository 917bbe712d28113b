#include "queue/resp.hpp"

#include <Poco/Redis/Exception.h>

#include <algorithm>
#include <charconv>
#include <climits>
#include <cstdlib>
#include <cstring>

namespace eventflow::queue {
namespace {
[[noreturn]] void protocolError(const char* what) {
  throw Poco::Redis::RedisException(std::string("Redis protocol error: ") + what);
}
}  // namespace

std::string bulk(Reply&& value) {
  if (value.kind == '$' || value.kind == '+') return std::move(value.text);
  if (value.kind == ':') return std::to_string(value.number);
  return {};
}

long long integer(const Reply& value) {
  if (value.kind == ':') return value.number;
  if (value.kind == '$' || value.kind == '+') return std::atoll(value.text.c_str());
  return 0;
}

Reply* array(Reply& value) { return value.kind == '*' && !value.null ? &value : nullptr; }

// Receives until `want` unread bytes are buffered.
void RespReader::need(std::size_t want) {
  while (end_ - pos_ < want) {
    const std::size_t have = end_ - pos_;
    if (in_.size() - end_ < want - have) {
      // The rest would not fit after what is buffered: move the unread
      // bytes to the front, and grow if that is not enough.
      std::memmove(in_.data(), in_.data() + pos_, have);
      pos_ = 0;
      end_ = have;
      if (in_.size() < std::max(want, kInitialBuffer)) in_.resize(std::max({want, kInitialBuffer, in_.size() * 2}));
    }
    const int got = receive_(in_.data() + end_, in_.size() - end_);
    if (got <= 0) throw Poco::Redis::RedisException("Redis closed the connection");
    end_ += static_cast<std::size_t>(got);
  }
}

void RespReader::release() {
  pos_ = end_ = 0;
  if (in_.size() > kKeptBuffer) std::string().swap(in_);
}

// The next line without its CRLF, consumed; valid until the next need().
std::string_view RespReader::line() {
  std::size_t scanned = 0;
  for (;;) {
    const std::string_view unread(in_.data() + pos_, end_ - pos_);
    if (const auto at = unread.find("\r\n", scanned); at != std::string_view::npos) {
      pos_ += at + 2;
      return unread.substr(0, at);
    }
    if (unread.size() > kMaxLine) protocolError("line too long");
    scanned = unread.empty() ? 0 : unread.size() - 1;
    need(unread.size() + 1);
  }
}

long long RespReader::number(std::string_view digits) {
  long long n = 0;
  const auto [end, error] = std::from_chars(digits.data(), digits.data() + digits.size(), n);
  if (error != std::errc() || end != digits.data() + digits.size()) protocolError("bad number");
  return n;
}

// A bulk string's or an array's length; nullopt for RESP's null (-1).
std::optional<std::size_t> RespReader::length(std::string_view digits, long long max, const char* what) {
  const long long n = number(digits);
  if (n == -1) return std::nullopt;
  if (n < 0 || n > max) protocolError(what);
  return static_cast<std::size_t>(n);
}

Reply RespReader::read(int depth) {
  Reply r;
  std::string_view head = line();
  if (head.empty()) protocolError("empty line");
  r.kind = head.front();
  head.remove_prefix(1);
  switch (r.kind) {
    case '+':
    case '-':
      r.text.assign(head);
      break;
    case ':':
      r.number = number(head);
      break;
    case '$': {
      const auto n = length(head, kMaxBulk, "bad bulk string length");
      if (!n) {
        r.null = true;
        break;
      }
      const std::size_t len = *n;
      need(len + 2);
      const char* p = in_.data() + pos_;
      if (p[len] != '\r' || p[len + 1] != '\n') protocolError("bulk string without CRLF");
      r.text.assign(p, len);
      pos_ += len + 2;
      break;
    }
    case '*': {
      const auto n = length(head, INT_MAX, "bad array length");
      if (!n) {
        r.null = true;
        break;
      }
      if (depth >= kMaxDepth) protocolError("arrays nested too deep");
      r.items.reserve(std::min<std::size_t>(*n, 1024));
      for (std::size_t i = 0; i < *n; ++i) r.items.push_back(read(depth + 1));
      break;
    }
    default:
      protocolError("unknown reply type");
  }
  return r;
}

}  // namespace eventflow::queue
