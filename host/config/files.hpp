#pragma once
// Reading the small files a config names (secrets, TLS certificates and
// keys): a FIFO would block start-up and /dev/zero would never end, so only
// regular files, and only so much.

#include <cstddef>
#include <string>

#include "base/expected.hpp"

namespace eventflow::config {

/// The bytes of `path` when it is a regular file of at most `max` bytes;
/// else "cannot open: …", "not a regular file" or "larger than N KiB".
Expected<std::string> readSmallFile(const std::string& path, std::size_t max);

}  // namespace eventflow::config
