#pragma once
// What `serve` would refuse in server.tls's files, found by `validate` too:
// a file that is missing, unreadable or not PEM, and a key that is not the
// certificate's. OpenSSL's libcrypto reads them as the TLS server will.

#include <string>

namespace eventflow::config {

/// Empty when `file` holds at least one PEM certificate; else why not.
std::string certificateProblem(const std::string& file);

/// Empty when `key_file` holds a PEM private key that belongs to the first
/// certificate in `cert_file` (itself checked first); else why not.
std::string privateKeyProblem(const std::string& key_file, const std::string& cert_file);

}  // namespace eventflow::config
