#pragma once
// server.tls as OpenSSL will serve it: one context shared by every
// connection (an SSL_CTX is safe to share across threads once built).

#include <boost/asio/ssl/context.hpp>

#include <memory>

#include "base/expected.hpp"
#include "config/config.hpp"

namespace eventflow::http {

/// TLS 1.2 and newer, the certificate chain and key of `tls`, and with
/// `client_ca_file` a client certificate that CA signed required. An error
/// names the key whose file OpenSSL refused.
Expected<std::unique_ptr<boost::asio::ssl::context>> makeTlsContext(const config::TlsConfig& tls);

}  // namespace eventflow::http
