#include "config/files.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace eventflow::config {

Expected<std::string> readSmallFile(const std::string& path, std::size_t max) {
  // O_NONBLOCK: opening a FIFO must not wait for a writer before it is refused.
  const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return makeError(std::string("cannot open: ") + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return makeError("not a regular file");
  }
  if (static_cast<std::size_t>(st.st_size) > max) {
    ::close(fd);
    return makeError("larger than " + std::to_string(max / 1024) + " KiB");
  }
  std::string s(max + 1, '\0');
  std::size_t got = 0;
  while (got < s.size()) {
    const ssize_t n = ::read(fd, s.data() + got, s.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<std::size_t>(n);
  }
  ::close(fd);
  if (got > max) return makeError("larger than " + std::to_string(max / 1024) + " KiB");
  s.resize(got);
  return s;
}

}  // namespace eventflow::config
