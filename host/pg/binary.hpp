#pragma once
// PostgreSQL's binary formats, as parameters (arrays) and COPY take them:
// the server reads uuids, numbers and times without parsing them and text
// without unescaping it (array_in was the server's costliest function on
// single posts while the arrays went as text; docs/benchmarks.md).

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

namespace eventflow::pg {

// Element type oids (pg_type), for array headers.
inline constexpr std::uint32_t kInt4Oid = 23;
inline constexpr std::uint32_t kInt8Oid = 20;
inline constexpr std::uint32_t kTextOid = 25;
inline constexpr std::uint32_t kTimestamptzOid = 1184;
inline constexpr std::uint32_t kUuidOid = 2950;

/// Big-endian integers and length-prefixed values.
class BinaryWriter {
 public:
  template <class T>
  void put(T v) {
    for (int shift = 8 * (static_cast<int>(sizeof(T)) - 1); shift >= 0; shift -= 8)
      data_ += static_cast<char>((static_cast<std::uint64_t>(v) >> shift) & 0xff);
  }
  void value(std::string_view bytes) {
    put(static_cast<std::uint32_t>(bytes.size()));
    data_.append(bytes);
  }
  /// A number as a value: its length, then its bytes.
  template <class T>
  void number(T v) {
    put(static_cast<std::uint32_t>(sizeof(T)));
    put(v);
  }
  void null() { put(std::int32_t{-1}); }
  void raw(std::string_view bytes) { data_.append(bytes); }
  void reserve(std::size_t n) { data_.reserve(n); }
  std::string take() { return std::move(data_); }

 private:
  std::string data_;
};

/// One array parameter (array_recv's format): one dimension, no NULL.
class BinaryArray : public BinaryWriter {
 public:
  BinaryArray(std::uint32_t element_type, std::size_t size) {
    for (const std::uint32_t word : {1u, 0u, element_type, static_cast<std::uint32_t>(size), 1u}) put(word);
  }
  void add(std::string_view bytes) { value(bytes); }
};

/// The start of COPY's binary format: signature, flags, no header extension.
inline void copyHeader(BinaryWriter& out) {
  out.raw({"PGCOPY\n\xff\r\n\0", 11});
  out.put(std::int32_t{0});
  out.put(std::int32_t{0});
}

/// And its end.
inline void copyTrailer(BinaryWriter& out) { out.put(std::int16_t{-1}); }

/// timestamptz's binary form: microseconds since 2000-01-01 UTC, here at
/// millisecond precision, as the text paths write it.
inline std::int64_t postgresMicros(std::chrono::system_clock::time_point at) {
  constexpr std::int64_t kPostgresEpochMicros = 946'684'800'000'000;  // 2000-01-01 in Unix time
  return std::chrono::duration_cast<std::chrono::milliseconds>(at.time_since_epoch()).count() * 1000 -
         kPostgresEpochMicros;
}

/// The 16 bytes of a UUID written 8-4-4-4-12 in hex digits of either case;
/// false, with `out` unspecified, if `id` is not one.
inline bool uuidBytes(std::string_view id, char (&out)[16]) {
  if (id.size() != 36) return false;
  const auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f') return (c | 0x20) - 'a' + 10;
    return -1;
  };
  std::size_t k = 0;
  for (std::size_t i = 0; i < id.size();) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (id[i++] != '-') return false;
      continue;
    }
    const int high = nibble(id[i]);
    const int low = nibble(id[i + 1]);
    if (high < 0 || low < 0) return false;
    out[k++] = static_cast<char>(high << 4 | low);
    i += 2;
  }
  return true;
}

}  // namespace eventflow::pg
