#include "base/ids.hpp"

#include <Poco/DigestEngine.h>
#include <Poco/SHA2Engine.h>
#include <Poco/UUID.h>
#include <sys/random.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace eventflow {

std::string newUuid() {
  // Poco's UUIDGenerator::createRandom opens /dev/urandom on every call (a
  // file open per request). The kernel's generator, read 4 KiB at a time per
  // thread, costs one system call per 256 ids and stays unpredictable:
  // generated event ids are echoed to clients, and one who could predict
  // the next could take it first.
  thread_local unsigned char pool[4096];
  thread_local std::size_t used = sizeof pool;
  if (used == sizeof pool) {
    for (std::size_t got = 0; got < sizeof pool;) {
      const ssize_t n = ::getrandom(pool + got, sizeof pool - got, 0);
      if (n > 0) got += static_cast<std::size_t>(n);
      else if (errno != EINTR) throw std::runtime_error("getrandom failed");
    }
    used = 0;
  }
  unsigned char bytes[16];
  std::memcpy(bytes, pool + used, sizeof bytes);
  used += sizeof bytes;
  bytes[6] = static_cast<unsigned char>((bytes[6] & 0x0f) | 0x40);  // version 4
  bytes[8] = static_cast<unsigned char>((bytes[8] & 0x3f) | 0x80);  // RFC 4122 variant
  Poco::UUID uuid;
  uuid.copyFrom(reinterpret_cast<const char*>(bytes));
  return uuid.toString();
}

bool isUuid(std::string_view s) {
  if (s.size() != 36) return false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (s[i] != '-') return false;
    } else if (!std::isxdigit(static_cast<unsigned char>(s[i]))) {
      return false;
    }
  }
  return true;
}

std::string sha256Hex(std::string_view data) {
  Poco::SHA2Engine engine(Poco::SHA2Engine::SHA_256);
  engine.update(data.data(), static_cast<unsigned>(data.size()));
  return Poco::DigestEngine::digestToHex(engine.digest());
}

std::string hostName() {
  char buf[256] = {};
  if (gethostname(buf, sizeof buf - 1) != 0) return "localhost";
  return buf;
}

}  // namespace eventflow
