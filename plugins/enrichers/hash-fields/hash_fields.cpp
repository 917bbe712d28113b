#include "hash_fields.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <stdexcept>

#include <openssl/evp.h>
#include <openssl/hmac.h>

namespace eventflow::plugins {
namespace {

// 128 bits: below that an HMAC key can be searched; above 4 KiB the file is
// surely not a key (a certificate, a log) and is refused before being read.
constexpr std::size_t kMinKeyBytes = 16;
constexpr std::size_t kMaxKeyBytes = 4096;

std::string octal(mode_t mode) {
  char text[8];
  std::snprintf(text, sizeof text, "%04o", static_cast<unsigned>(mode & 07777));
  return text;
}

// Bytes up to the end of the first `count` UTF-8 code points of `text`.
std::size_t codePointPrefix(std::string_view text, std::size_t count) {
  std::size_t i = 0;
  while (count > 0 && i < text.size()) {
    ++i;
    while (i < text.size() && (static_cast<unsigned char>(text[i]) & 0xC0) == 0x80) ++i;
    --count;
  }
  return count == 0 ? i : text.size();
}

}  // namespace

std::string readKeyFile(const std::string& path) {
  const std::string where = "hash-fields: key_file " + path;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw std::invalid_argument(where + ": cannot open: " + std::strerror(errno));
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  // fstat on the open file: the checks hold for the bytes read below, even if
  // the path is replaced in between.
  struct stat st{};
  if (::fstat(fd, &st) != 0) throw std::invalid_argument(where + ": cannot stat: " + std::strerror(errno));
  if (!S_ISREG(st.st_mode)) throw std::invalid_argument(where + ": is not a regular file");
  if (st.st_uid != ::geteuid())
    throw std::invalid_argument(where + ": is owned by uid " + std::to_string(st.st_uid) + ", but the host runs as uid " +
                                std::to_string(::geteuid()) + "; a key must belong to the user that reads it");
  if ((st.st_mode & 077) != 0)
    throw std::invalid_argument(where + ": has mode " + octal(st.st_mode) +
                                ", which lets group or others read or change the key; chmod 600 " + path);
  if (static_cast<std::size_t>(st.st_size) > kMaxKeyBytes + 2)
    throw std::invalid_argument(where + ": is " + std::to_string(st.st_size) + " bytes; a key has at most " +
                                std::to_string(kMaxKeyBytes));
  std::string key(static_cast<std::size_t>(st.st_size), '\0');
  std::size_t got = 0;
  while (got < key.size()) {
    const ssize_t n = ::read(fd, key.data() + got, key.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw std::invalid_argument(where + ": cannot read: " + std::strerror(errno));
    if (n == 0) break;
    got += static_cast<std::size_t>(n);
  }
  key.resize(got);
  // `echo secret > key` adds a newline nobody means as part of the key.
  if (key.ends_with("\r\n")) key.resize(key.size() - 2);
  else if (key.ends_with('\n')) key.pop_back();
  if (key.size() < kMinKeyBytes || key.size() > kMaxKeyBytes)
    throw std::invalid_argument(where + ": holds " + std::to_string(key.size()) + " bytes; a key has " +
                                std::to_string(kMinKeyBytes) + " to " + std::to_string(kMaxKeyBytes) +
                                " (e.g. head -c 32 /dev/urandom | base64 > key)");
  return key;
}

HashFieldsEnricher::HashFieldsEnricher(const nlohmann::json& config, Context& context) {
  if (!config.is_object()) throw std::invalid_argument("hash-fields: config must be an object");
  const auto fields = config.find("fields");
  if (fields == config.end()) throw std::invalid_argument("hash-fields: fields is required");
  fields_ = parseFieldPaths(*fields, "hash-fields: fields");
  const auto key_file = config.find("key_file");
  if (key_file == config.end() || !key_file->is_string() || key_file->get_ref<const std::string&>().empty())
    throw std::invalid_argument("hash-fields: key_file is required (a file holding the HMAC key, chmod 600)");
  key_ = readKeyFile(context.resolvePath(key_file->get<std::string>()));
  const std::string encoding = config.value("encoding", std::string("hex"));
  if (encoding != "hex" && encoding != "base64")
    throw std::invalid_argument("hash-fields: encoding must be \"hex\" or \"base64\", not \"" + encoding + "\"");
  base64_ = encoding == "base64";
  if (const auto it = config.find("keep_prefix"); it != config.end()) {
    if (!it->is_number_integer() || it->get<std::int64_t>() < 0 || it->get<std::int64_t>() > 64)
      throw std::invalid_argument("hash-fields: keep_prefix must be an integer from 0 to 64, not " + it->dump());
    keep_prefix_ = it->get<std::size_t>();
  }
}

std::string HashFieldsEnricher::digest(std::string_view text) const {
  std::array<unsigned char, EVP_MAX_MD_SIZE> mac{};
  unsigned int length = 0;
  if (HMAC(EVP_sha256(), key_.data(), static_cast<int>(key_.size()), reinterpret_cast<const unsigned char*>(text.data()),
           text.size(), mac.data(), &length) == nullptr)
    throw std::runtime_error("hash-fields: HMAC-SHA256 failed in OpenSSL");
  if (base64_) {
    std::string out(4 * ((length + 2) / 3) + 1, '\0');
    const int written = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), mac.data(), static_cast<int>(length));
    out.resize(static_cast<std::size_t>(written));
    return out;
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(2 * length, '\0');
  for (unsigned int i = 0; i < length; ++i) {
    out[2 * i] = kHex[mac[i] >> 4];
    out[2 * i + 1] = kHex[mac[i] & 0x0F];
  }
  return out;
}

Result HashFieldsEnricher::enrich(Event& event) {
  for (const auto& path : fields_) {
    nlohmann::json* value = findField(event.body, path);
    if (value == nullptr || value->is_null()) continue;
    if (value->is_string()) {
      const std::string& text = value->get_ref<const std::string&>();
      const std::size_t keep = keep_prefix_ == 0 ? 0 : codePointPrefix(text, keep_prefix_);
      std::string hashed = keep < text.size() ? text.substr(0, keep) : std::string();
      hashed += digest(text);
      *value = std::move(hashed);
    } else {
      // Invalid UTF-8 inside an object becomes U+FFFD rather than an
      // exception: the digest is still stable for that value.
      *value = digest(value->dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
    }
  }
  return Result::ok();
}

}  // namespace eventflow::plugins
