#include "http/tls.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <string>

namespace eventflow::http {
namespace {

std::string reasonOf(const boost::system::error_code& ec) {
  std::string why = ec.message();
  ERR_clear_error();
  return why;
}

}  // namespace

Expected<std::unique_ptr<boost::asio::ssl::context>> makeTlsContext(const config::TlsConfig& tls) {
  namespace ssl = boost::asio::ssl;
  auto ctx = std::make_unique<ssl::context>(ssl::context::tls_server);
  boost::system::error_code ec;
  // TLS 1.0 and 1.1 are deprecated (RFC 8996); SSL 3 and older long broken.
  if (SSL_CTX_set_min_proto_version(ctx->native_handle(), TLS1_2_VERSION) != 1)
    return makeError("server.tls: OpenSSL refused TLS 1.2 as the minimum version");
  ctx->set_options(ssl::context::default_workarounds | ssl::context::single_dh_use | ssl::context::no_compression, ec);
  if (ec) return makeError("server.tls: " + reasonOf(ec));
  if (ctx->use_certificate_chain_file(tls.cert_file, ec); ec)
    return makeError("server.tls.cert_file '" + tls.cert_file + "': " + reasonOf(ec));
  if (ctx->use_private_key_file(tls.key_file, ssl::context::pem, ec); ec)
    return makeError("server.tls.key_file '" + tls.key_file + "': " + reasonOf(ec));
  if (SSL_CTX_check_private_key(ctx->native_handle()) != 1) {
    ERR_clear_error();
    return makeError("server.tls.key_file '" + tls.key_file + "' is not the private key of server.tls.cert_file");
  }
  if (!tls.client_ca_file.empty()) {
    if (ctx->load_verify_file(tls.client_ca_file, ec); ec)
      return makeError("server.tls.client_ca_file '" + tls.client_ca_file + "': " + reasonOf(ec));
    // The CA names go into the CertificateRequest, so a client holding
    // several certificates offers the one this CA signed.
    if (STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(tls.client_ca_file.c_str()))
      SSL_CTX_set_client_CA_list(ctx->native_handle(), names);
    ctx->set_verify_mode(ssl::verify_peer | ssl::verify_fail_if_no_peer_cert, ec);
    if (ec) return makeError("server.tls.client_ca_file: " + reasonOf(ec));
    // Sessions resumed under client verification need an id context, or
    // OpenSSL fails the resumption ("session id context uninitialized").
    static constexpr unsigned char kSessionContext[] = "eventflow";
    SSL_CTX_set_session_id_context(ctx->native_handle(), kSessionContext, sizeof kSessionContext - 1);
  }
  return ctx;
}

}  // namespace eventflow::http
