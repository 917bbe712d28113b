#include "http/json_scan.hpp"

#include <cmath>
#include <cstdlib>

namespace eventflow::http {
namespace {

constexpr auto npos = std::string_view::npos;

bool isSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

// Just past the string that opens at text[at] ('"'); npos if it never ends.
std::size_t skipString(std::string_view text, std::size_t at) {
  for (std::size_t i = at + 1; i < text.size(); ++i) {
    if (text[i] == '\\') ++i;
    else if (text[i] == '"') return i + 1;
  }
  return npos;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && isSpace(s.front())) s.remove_prefix(1);
  while (!s.empty() && isSpace(s.back())) s.remove_suffix(1);
  return s;
}

struct Frame {
  bool object = false;
  bool want_key = false;  // objects: the next string is a key
  std::string key;
  std::size_t index = 0;  // arrays
};

std::string pathOf(const std::vector<Frame>& frames) {
  std::string out;
  for (const auto& f : frames) {
    if (f.object) {
      if (!out.empty()) out += '.';
      out += f.key;
    } else {
      out += '[' + std::to_string(f.index) + ']';
    }
    if (out.size() > kMaxPathLength) {
      out.resize(kMaxPathLength);
      out += "...";
      break;
    }
  }
  return out;
}

// Walks the tokens of `text` keeping the path to the current value. Only for
// messages, after a cheaper check or the parser has found a fault: it builds
// a frame per level. `stop_open(depth)` before a container opens at that
// depth, `stop_scalar(token)` on each number or literal: true stops the walk
// and answers the path there.
template <typename StopOpen, typename StopScalar>
std::optional<std::string> walk(std::string_view text, StopOpen stop_open, StopScalar stop_scalar) {
  std::vector<Frame> frames;
  std::size_t i = 0;
  while (i < text.size()) {
    const char c = text[i];
    if (isSpace(c) || c == ':') {
      ++i;
    } else if (c == '{' || c == '[') {
      if (stop_open(frames.size() + 1)) return pathOf(frames);
      auto& f = frames.emplace_back();
      f.object = f.want_key = c == '{';
      ++i;
    } else if (c == '}' || c == ']') {
      if (!frames.empty()) frames.pop_back();
      ++i;
    } else if (c == ',') {
      if (!frames.empty()) {
        auto& f = frames.back();
        if (f.object) f.want_key = true;
        else ++f.index;
      }
      ++i;
    } else if (c == '"') {
      const auto end = skipString(text, i);
      if (end == npos) return std::nullopt;
      if (!frames.empty() && frames.back().want_key) {
        frames.back().key.assign(text.substr(i + 1, end - i - 2));
        frames.back().want_key = false;
      }
      i = end;
    } else {
      std::size_t end = i;
      while (end < text.size() && !isSpace(text[end]) && text[end] != ',' && text[end] != ']' && text[end] != '}' &&
             text[end] != ':')
        ++end;
      if (stop_scalar(text.substr(i, end - i))) return pathOf(frames);
      i = end;
    }
  }
  return std::nullopt;
}

}  // namespace

bool nestsWithin(std::string_view text, std::size_t max) {
  // One pass and no allocation: this runs on every body, before the parser.
  std::size_t depth = 0;
  const std::size_t n = text.size();
  const char* p = text.data();
  for (std::size_t i = 0; i < n; ++i) {
    switch (p[i]) {
      case '[':
      case '{':
        if (++depth > max) return false;
        break;
      case ']':
      case '}':
        if (depth > 0) --depth;
        break;
      case '"':
        for (++i; i < n; ++i) {
          if (p[i] == '\\') ++i;
          else if (p[i] == '"') break;
        }
        break;
      default:
        break;
    }
  }
  return true;
}

std::string pathTooDeep(std::string_view text, std::size_t max) {
  return walk(text, [max](std::size_t depth) { return depth > max; }, [](std::string_view) { return false; })
      .value_or(std::string());
}

std::optional<std::string> pathOfHugeNumber(std::string_view text) {
  return walk(text, [](std::size_t) { return false; }, [](std::string_view token) {
    if (token.empty() || (token.front() != '-' && (token.front() < '0' || token.front() > '9'))) return false;
    // The parser's own test (nlohmann: a number is a double when it fits no
    // 64-bit integer, and refused when that double is infinite).
    const std::string copy(token);
    return std::isinf(std::strtod(copy.c_str(), nullptr));
  });
}

std::optional<std::vector<std::string_view>> arrayElements(std::string_view text) {
  std::size_t i = 0;
  while (i < text.size() && isSpace(text[i])) ++i;
  if (i == text.size() || text[i] != '[') return std::nullopt;
  std::vector<std::string_view> out;
  std::size_t depth = 0;
  std::size_t start = ++i;
  for (; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '"') {
      const auto end = skipString(text, i);
      if (end == npos) return std::nullopt;
      i = end - 1;
    } else if (c == '[' || c == '{') {
      ++depth;
    } else if (c == ']' || c == '}') {
      if (depth > 0) {
        --depth;
        continue;
      }
      if (c != ']' || !trim(text.substr(i + 1)).empty()) return std::nullopt;
      const auto last = trim(text.substr(start, i - start));
      if (!last.empty() || !out.empty()) out.push_back(last);
      return out;
    } else if (c == ',' && depth == 0) {
      out.push_back(trim(text.substr(start, i - start)));
      start = i + 1;
    }
  }
  return std::nullopt;
}

}  // namespace eventflow::http
