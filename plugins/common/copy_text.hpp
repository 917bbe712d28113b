#pragma once
// PostgreSQL's text encoding of values in COPY's text format, for the two
// writers that copy rows in (the host's store into raw_events, the postgres
// sink into processed_events). Standard library only, so the host may
// include it too.

#include <cstddef>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>

namespace eventflow::copy_text {

/// Length of the UTF-8 sequence at text[i], 0 if it is not one PostgreSQL
/// takes (overlong forms, surrogates and code points past U+10FFFF are not).
inline std::size_t utf8Length(std::string_view text, std::size_t i) {
  const auto at = [&](std::size_t k) { return static_cast<unsigned char>(text[k]); };
  const unsigned char lead = at(i);
  std::size_t length = 0;
  unsigned char low = 0x80;  // the second byte's range
  unsigned char high = 0xBF;
  if (lead >= 0xC2 && lead <= 0xDF) {
    length = 2;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    length = 3;
    if (lead == 0xE0) low = 0xA0;
    if (lead == 0xED) high = 0x9F;
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    length = 4;
    if (lead == 0xF0) low = 0x90;
    if (lead == 0xF4) high = 0x8F;
  } else {
    return 0;
  }
  if (i + length > text.size() || at(i + 1) < low || at(i + 1) > high) return 0;
  for (std::size_t k = 2; k < length; ++k)
    if (at(i + k) < 0x80 || at(i + k) > 0xBF) return 0;
  return length;
}

/// Walks `text`, calling `ascii(i, c)` for each ASCII byte. False at a NUL
/// or invalid UTF-8, which PostgreSQL would refuse for the whole statement.
template <class Ascii>
bool scan(std::string_view text, Ascii ascii) {
  for (std::size_t i = 0; i < text.size();) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    if (c >= 0x80) {
      const std::size_t length = utf8Length(text, i);
      if (length == 0) return false;
      i += length;
      continue;
    }
    if (c == 0) return false;
    ascii(i, static_cast<char>(c));
    ++i;
  }
  return true;
}

/// True when PostgreSQL takes `text` as a text value: no NUL, valid UTF-8.
inline bool valid(std::string_view text) {
  return scan(text, [](std::size_t, char) {});
}

/// Appends `text`, each ASCII byte for which `escape` gives a replacement
/// replaced by it. False as scan() is.
template <class Escape>
bool appendEscaped(std::string& out, std::string_view text, Escape escape) {
  std::size_t pending = 0;  // start of the bytes not yet appended
  const bool ok = scan(text, [&](std::size_t i, char c) {
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

}  // namespace eventflow::copy_text
