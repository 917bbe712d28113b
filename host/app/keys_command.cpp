// eventflow keys new: a fresh API key and the server.api_keys line that admits
// it. The host stores only the key's SHA-256 (server.api_keys[].sha256), so the
// key itself is shown once, here, and nowhere else.

#include <sys/random.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <iostream>
#include <set>
#include <sstream>

#include "app/app.hpp"
#include "app/args.hpp"
#include "app/cli.hpp"
#include "base/ids.hpp"

namespace eventflow::app {
namespace {

const char* const kHelp = R"(usage: eventflow keys new --scope SCOPE[,SCOPE...] [--name NAME]

Prints a new random API key, once, and the line to add under server.api_keys
in eventflow.yaml. The config keeps only the key's SHA-256; a client sends the
key as "Authorization: Bearer KEY" (or "X-API-Key: KEY").

--scope   ingest (POST /events), admin (DLQ, pipelines, admin routes) or
          metrics (/metrics, /metrics/summary); several joined with commas
--name    the key's name in logs and 403 answers (letters, digits, . _ -;
          default: the first scope and the start of the hash)

exit codes: 0 ok, 1 failure, 2 usage error.
)";

// 32 bytes from the kernel's CSPRNG: 256 bits, far past guessing.
constexpr std::size_t kKeyBytes = 32;

bool randomBytes(unsigned char* out, std::size_t n, std::string& why) {
  std::size_t got = 0;
  while (got < n) {
    const ssize_t r = ::getrandom(out + got, n - got, 0);
    if (r < 0) {
      if (errno == EINTR) continue;
      why = std::strerror(errno);
      return false;
    }
    got += static_cast<std::size_t>(r);
  }
  return true;
}

std::string hex(const unsigned char* data, std::size_t n) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string s;
  s.reserve(2 * n);
  for (std::size_t i = 0; i < n; ++i) {
    s += kDigits[data[i] >> 4];
    s += kDigits[data[i] & 0xf];
  }
  return s;
}

bool plainName(const std::string& name) {
  return !name.empty() && name.size() <= 64 && std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
           c == '-';
  });
}

int newKey(const Args& args) {
  if (!args.has("scope")) return usageError("keys new needs --scope (ingest, admin or metrics)", kHelp);
  static const std::set<std::string> kScopes{"ingest", "admin", "metrics"};
  std::vector<std::string> scopes;
  std::stringstream list(args.get("scope"));
  for (std::string s; std::getline(list, s, ',');) {
    if (!kScopes.count(s)) return usageError("unknown scope '" + s + "' (ingest, admin or metrics)", kHelp);
    if (std::find(scopes.begin(), scopes.end(), s) == scopes.end()) scopes.push_back(s);
  }
  if (scopes.empty()) return usageError("--scope names no scope (ingest, admin or metrics)", kHelp);

  unsigned char bytes[kKeyBytes];
  std::string why;
  if (!randomBytes(bytes, sizeof bytes, why)) return fail("cannot read random bytes: " + why);
  // The prefix lets secret scanners and people tell an EventFlow key at a glance.
  const std::string key = "ef_" + hex(bytes, sizeof bytes);
  const std::string digest = sha256Hex(key);
  const std::string name = args.get("name", scopes.front() + "-" + digest.substr(0, 8));
  if (!plainName(name)) return usageError("--name must be 1 to 64 letters, digits, '.', '_' or '-', not '" + name + "'", kHelp);

  std::string scope_list;
  for (const auto& s : scopes) scope_list += (scope_list.empty() ? "" : ", ") + s;
  std::cout << key << "\n\n"
            << "The key above is shown only this once: give it to the client, which sends it as\n"
            << "\"Authorization: Bearer KEY\". Add this line under server.api_keys in eventflow.yaml\n"
            << "and restart the host:\n\n"
            << "- { name: " << name << ", sha256: \"" << digest << "\", scopes: [" << scope_list << "] }\n";
  return 0;
}

}  // namespace

int keys(int argc, char** argv) {
  Args args(argc, argv, 2, {"help"});
  if (auto extra = args.unknown({"scope", "name", "help"}); !extra.empty())
    return usageError(unknownOption(extra.front(), {"scope", "name", "help"}), kHelp);
  if (!args.ok()) return usageError(args.error(), kHelp);
  if (args.has("help")) {
    std::cout << kHelp;
    return 0;
  }
  const auto& words = args.positional();
  if (words.empty()) return usageError("keys needs a command: new", kHelp);
  if (words.front() != "new") return usageError(unknownWord("keys command", words.front(), {"new"}), kHelp);
  if (words.size() != 1) return usageError("keys new takes no arguments", kHelp);
  return newKey(args);
}

}  // namespace eventflow::app
