#include "config/pem.hpp"

#include "config/files.hpp"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <memory>

namespace eventflow::config {
namespace {

// A certificate chain or key is a few KiB; a CA bundle (Debian's has ~140
// certificates) about 200 KiB. Past 1 MiB it is not what was meant, and a
// FIFO or /dev/zero must not hang or fill memory.
constexpr std::size_t kMaxPemBytes = 1 << 20;

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
struct KeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};

// The file's bytes, or why they cannot be read.
std::string readPem(const std::string& file, std::string& problem) {
  auto text = readSmallFile(file, kMaxPemBytes);
  if (!text) {
    problem = "cannot be used: " + text.error().message;
    return {};
  }
  return std::move(*text);
}

// OpenSSL's reason for the last failure, and its error queue emptied so the
// next check starts clean.
std::string opensslReason() {
  const unsigned long code = ERR_peek_last_error();
  ERR_clear_error();
  if (code == 0) return "no PEM block found";
  const char* reason = ERR_reason_error_string(code);
  return reason ? reason : "unknown OpenSSL error";
}

std::unique_ptr<BIO, BioFree> memoryBio(const std::string& text) {
  return std::unique_ptr<BIO, BioFree>(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
}

std::unique_ptr<X509, X509Free> firstCertificate(const std::string& file, std::string& problem) {
  const std::string text = readPem(file, problem);
  if (!problem.empty()) return nullptr;
  auto bio = memoryBio(text);
  std::unique_ptr<X509, X509Free> cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (!cert) problem = "holds no PEM certificate (" + opensslReason() + ")";
  return cert;
}

}  // namespace

std::string certificateProblem(const std::string& file) {
  std::string problem;
  (void)firstCertificate(file, problem);
  return problem;
}

std::string privateKeyProblem(const std::string& key_file, const std::string& cert_file) {
  std::string problem;
  const std::string text = readPem(key_file, problem);
  if (!problem.empty()) return problem;
  auto bio = memoryBio(text);
  // No passphrase callback: an encrypted key would make OpenSSL prompt on
  // the terminal, which a service does not have.
  std::unique_ptr<EVP_PKEY, KeyFree> key(
      PEM_read_bio_PrivateKey(bio.get(), nullptr, [](char*, int, int, void*) { return 0; }, nullptr));
  if (!key) return "holds no unencrypted PEM private key (" + opensslReason() + ")";
  std::string cert_problem;
  auto cert = firstCertificate(cert_file, cert_problem);
  if (!cert) return {};  // the certificate's own key reports that
  if (X509_check_private_key(cert.get(), key.get()) != 1) {
    ERR_clear_error();
    return "is not the private key of the certificate in server.tls.cert_file";
  }
  return {};
}

}  // namespace eventflow::config
