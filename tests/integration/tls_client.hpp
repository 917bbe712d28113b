#pragma once
// An HTTPS client for tests: OpenSSL over a blocking socket, so a test
// chooses what it trusts and which certificate it shows, and reads exactly
// what came back (with raw_http.hpp's reader).

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cstdint>
#include <string>

#include "raw_http.hpp"

namespace eventflow::testing {

/// A TCP connection to 127.0.0.1:port with a 10 s receive timeout; -1 if refused.
inline int connectLoopback(std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0 || ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    if (fd >= 0) ::close(fd);
    return -1;
  }
  timeval timeout{10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  return fd;
}

class TlsConnection {
 public:
  /// Connects and completes a handshake for the name "localhost", trusting
  /// `ca_file`; `cert` and `key`: a client certificate to present.
  TlsConnection(std::uint16_t port, const std::string& ca_file, const std::string& cert = {},
                const std::string& key = {}) {
    ctx_ = SSL_CTX_new(TLS_client_method());
    SSL_CTX_load_verify_locations(ctx_, ca_file.c_str(), nullptr);
    SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER, nullptr);
    if (!cert.empty()) {
      SSL_CTX_use_certificate_chain_file(ctx_, cert.c_str());
      SSL_CTX_use_PrivateKey_file(ctx_, key.c_str(), SSL_FILETYPE_PEM);
    }
    fd_ = connectLoopback(port);
    if (fd_ < 0) return;
    ssl_ = SSL_new(ctx_);
    SSL_set_fd(ssl_, fd_);
    SSL_set_tlsext_host_name(ssl_, "localhost");
    SSL_set1_host(ssl_, "localhost");
    handshake_ok_ = SSL_connect(ssl_) == 1;
    if (!handshake_ok_) {
      const char* reason = ERR_reason_error_string(ERR_peek_last_error());
      error_ = reason ? reason : "handshake failed";
    }
    ERR_clear_error();
  }
  ~TlsConnection() {
    if (ssl_) SSL_free(ssl_);
    if (fd_ >= 0) ::close(fd_);
    SSL_CTX_free(ctx_);
  }
  TlsConnection(const TlsConnection&) = delete;
  TlsConnection& operator=(const TlsConnection&) = delete;

  /// The handshake completed on this side (with TLS 1.3 the server may still
  /// refuse a client certificate afterwards: the first read then fails).
  bool handshakeOk() const { return handshake_ok_; }
  const std::string& error() const { return error_; }
  std::string protocol() const { return ssl_ ? SSL_get_version(ssl_) : ""; }

  bool send(const std::string& data) {
    if (!handshake_ok_) return false;
    return SSL_write(ssl_, data.data(), static_cast<int>(data.size())) == static_cast<int>(data.size());
  }

  /// The next response; status 0 when the connection ended first.
  Response read() {
    return readResponse(buffer_, [this] {
      char chunk[16384];
      const int n = handshake_ok_ ? SSL_read(ssl_, chunk, sizeof chunk) : 0;
      if (n <= 0) {
        ERR_clear_error();
        return false;
      }
      buffer_.append(chunk, static_cast<std::size_t>(n));
      return true;
    });
  }

 private:
  SSL_CTX* ctx_ = nullptr;
  SSL* ssl_ = nullptr;
  int fd_ = -1;
  bool handshake_ok_ = false;
  std::string error_;
  std::string buffer_;
};

}  // namespace eventflow::testing
