#pragma once
// UTF-8 as PostgreSQL takes it, for whoever must know before a value reaches
// it: the config reader (pipeline names go into every table and answer), the
// store and the postgres sink (one bad byte would fail a whole COPY or
// statement). Standard library only, so the libpq layer, which the postgres
// sink links, may include it too.

#include <cstddef>
#include <string_view>

namespace eventflow::utf8 {

/// Length of the UTF-8 sequence at text[i], 0 if it is not one PostgreSQL
/// takes (overlong forms, surrogates and code points past U+10FFFF are not).
inline std::size_t sequenceLength(std::string_view text, std::size_t i) {
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
      const std::size_t length = sequenceLength(text, i);
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

}  // namespace eventflow::utf8
