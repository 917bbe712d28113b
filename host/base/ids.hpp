#pragma once

#include <string>
#include <string_view>

namespace eventflow {

/// A new time-ordered (version 7) UUID with 74 random bits, in canonical
/// lower-case form.
std::string newUuid();
/// A new random (version 4) UUID, in canonical lower-case form.
std::string newRandomUuid();
/// True for a canonical 8-4-4-4-12 hex UUID (any case).
bool isUuid(std::string_view s);
/// Lower-case hex SHA-256 of `data`.
std::string sha256Hex(std::string_view data);
/// This machine's host name.
std::string hostName();

}  // namespace eventflow
