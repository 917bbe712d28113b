// libFuzzer harness: a request body as POST /events and /events/batch read it
// (issue 11). The steps are ingestBody's in host/http/server.cpp, in its
// order: the depth pre-scan on the raw text, the parse, the per-item re-parse
// after a number out of range, NDJSON line by line, then checkEnvelope on
// every document that parsed. The first byte picks the mode and the depth
// limit, so one corpus reaches all three.

#include <cstddef>
#include <cstdint>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "http/json_scan.hpp"
#include "pipeline/envelope.hpp"

namespace {

using eventflow::http::arrayElements;
using eventflow::http::nestsWithin;
using eventflow::http::pathOfHugeNumber;
using eventflow::http::pathTooDeep;

void envelope(nlohmann::json& doc, bool naive_utc) {
  eventflow::pipeline::canonicaliseEventId(doc);
  eventflow::pipeline::Envelope out;
  eventflow::pipeline::EnvelopeOptions options;
  options.naive_timestamps_utc = naive_utc;
  (void)eventflow::pipeline::checkEnvelope(doc, eventflow::SystemTime{}, "corr", out, options);
  // The accepted document is serialised into the store: dump() recurses.
  (void)doc.dump();
}

void jsonBody(std::string_view body, bool batch, std::size_t max_depth, bool naive_utc) {
  const std::size_t allowed = batch ? max_depth + 1 : max_depth;
  if (!nestsWithin(body, allowed)) {
    (void)pathTooDeep(body, allowed);
    return;
  }
  std::vector<nlohmann::json> docs;
  try {
    nlohmann::json doc = nlohmann::json::parse(body);
    if (!batch) docs.push_back(std::move(doc));
    else if (doc.is_array()) docs = doc.get<std::vector<nlohmann::json>>();
  } catch (const nlohmann::json::parse_error&) {
    return;
  } catch (const nlohmann::json::out_of_range&) {
    const auto items = batch ? arrayElements(body) : std::nullopt;
    if (!items) {
      (void)pathOfHugeNumber(body);
      return;
    }
    for (const auto item : *items) {
      try {
        docs.push_back(nlohmann::json::parse(item));
      } catch (const nlohmann::json::out_of_range&) {
        (void)pathOfHugeNumber(item);
      } catch (const nlohmann::json::parse_error&) {
      }
    }
  }
  for (auto& doc : docs) envelope(doc, naive_utc);
}

void ndjsonBody(const std::string& body, std::size_t max_depth, bool naive_utc) {
  std::istringstream lines(body);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    if (!nestsWithin(line, max_depth)) {
      (void)pathTooDeep(line, max_depth);
      continue;
    }
    auto doc = nlohmann::json::parse(line, nullptr, false);
    if (doc.is_discarded()) {
      (void)pathOfHugeNumber(line);
      continue;
    }
    envelope(doc, naive_utc);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::uint8_t mode = data[0];
  const std::string body(reinterpret_cast<const char*>(data + 1), size - 1);
  // The default limit mostly; sometimes a small one, to reach the refusal.
  const std::size_t max_depth = (mode & 0x08) ? 1 + (mode >> 4) : 64;
  const bool naive_utc = (mode & 0x04) == 0;
  switch (mode % 3) {
    case 0: jsonBody(body, false, max_depth, naive_utc); break;
    case 1: jsonBody(body, true, max_depth, naive_utc); break;
    default: ndjsonBody(body, max_depth, naive_utc); break;
  }
  return 0;
}
