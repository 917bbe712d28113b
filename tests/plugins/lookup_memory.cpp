// Memory and speed of the lookup enricher's table (docs/benchmarks.md):
//   lookup_memory FILE [ROWS]
// writes FILE as a CSV of ROWS rows (default 1,000,000) when it does not
// exist, then prints the process's RSS before and after one LookupEnricher
// loads it with two fields, the load time, and the time per lookup.

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>

#include "plugin_test.hpp"
#include "lookup.hpp"

namespace {

long rssKiB() {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);)
    if (line.rfind("VmRSS:", 0) == 0) return std::strtol(line.c_str() + 6, nullptr, 10);
  return -1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: lookup_memory FILE [ROWS]\n";
    return 2;
  }
  const std::filesystem::path file = std::filesystem::absolute(argv[1]);
  const long rows = argc > 2 ? std::strtol(argv[2], nullptr, 10) : 1'000'000;
  if (!std::filesystem::exists(file)) {
    std::ofstream out(file);
    out << "user_id,plan,region,signed_up,email\n";
    const char* plans[] = {"free", "pro", "team", "enterprise"};
    const char* regions[] = {"eu-west", "eu-north", "us-east", "us-west", "ap-south", "sa-east"};
    char line[160];
    for (long i = 0; i < rows; ++i) {
      std::snprintf(line, sizeof line, "u%08ld,%s,%s,2025-%02ld-%02ld,user%ld@example.com\n", i, plans[i % 4],
                    regions[i % 6], 1 + i % 12, 1 + i % 28, i);
      out << line;
    }
  }
  eventflow::test::FakeContext context;
  const nlohmann::json config = {{"file", file.string()}, {"key", "user_id"}, {"fields", {"plan", "region"}}};
  const long before = rssKiB();
  const auto start = std::chrono::steady_clock::now();
  eventflow::plugins::LookupEnricher enricher(config, context);
  const auto loaded = std::chrono::steady_clock::now();
  const long after = rssKiB();

  constexpr int kLookups = 1'000'000;
  eventflow::Event event;
  char key[16];
  int hits = 0;
  const auto lookups = std::chrono::steady_clock::now();
  for (int i = 0; i < kLookups; ++i) {
    std::snprintf(key, sizeof key, "u%08ld", (static_cast<long>(i) * 7919) % rows);
    event.body = {{"user_id", key}};
    hits += enricher.enrich(event).isOk() && event.body.contains("plan") ? 1 : 0;
  }
  const auto done = std::chrono::steady_clock::now();
  using ms = std::chrono::duration<double, std::milli>;
  std::cout << "file            " << file.string() << " (" << std::filesystem::file_size(file) / (1024 * 1024)
            << " MiB)\n"
            << "rss before      " << before / 1024 << " MiB\n"
            << "rss after load  " << after / 1024 << " MiB (+" << (after - before) / 1024 << " MiB)\n"
            << "load            " << ms(loaded - start).count() << " ms\n"
            << "enrich          " << ms(done - lookups).count() * 1000 / kLookups << " us per event (" << hits
            << " of " << kLookups << " found; includes building the event body)\n";
  return hits == kLookups ? 0 : 1;
}
