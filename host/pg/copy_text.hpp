#pragma once
// PostgreSQL's text encoding of values in COPY's text format (the postgres
// sink's processed_events rows).

#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>

#include "base/utf8.hpp"

namespace eventflow::pg::copy_text {

/// Appends `text`, each ASCII byte for which `escape` gives a replacement
/// replaced by it. False at a NUL or invalid UTF-8, as utf8::scan.
template <class Escape>
bool appendEscaped(std::string& out, std::string_view text, Escape escape) {
  std::size_t pending = 0;  // start of the bytes not yet appended
  const bool ok = utf8::scan(text, [&](std::size_t i, char c) {
    if (const char* escaped = escape(c)) {
      out.append(text.data() + pending, i - pending);
      out += escaped;
      pending = i + 1;
    }
  });
  if (!ok) return false;
  out.append(text.data() + pending, text.size() - pending);
  return true;
}

/// Appends `text` as one value of COPY's text format. False for a NUL or
/// invalid UTF-8: COPY would refuse the whole batch for them, where a JSON
/// parameter replaces the bad bytes or refuses one row; the caller then
/// takes that path.
inline bool append(std::string& out, std::string_view text) {
  return appendEscaped(out, text, [](char c) -> const char* {
    return c == '\\' ? "\\\\" : c == '\t' ? "\\t" : c == '\n' ? "\\n" : c == '\r' ? "\\r" : nullptr;
  });
}

/// An optional column: no value is NULL.
inline std::optional<std::string_view> nullable(const std::optional<std::string>& text) {
  return text ? std::optional<std::string_view>(*text) : std::nullopt;
}

/// Appends one row: the values tab-separated (NULL as \N), then a newline.
/// False as append() is, for any value.
inline bool appendRow(std::string& out, std::initializer_list<std::optional<std::string_view>> values) {
  bool ok = true;
  bool first = true;
  for (const auto& value : values) {
    if (!first) out += '\t';
    first = false;
    if (value) ok = append(out, *value) && ok;
    else out += "\\N";
  }
  out += '\n';
  return ok;
}

}  // namespace eventflow::pg::copy_text
