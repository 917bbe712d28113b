// libFuzzer harness: a request body as POST /events and /events/batch read it
// (issue 11). parseBody (host/http/body.cpp) is the server's own reading of
// a body, so the harness runs exactly its steps: the depth pre-scan on the
// raw text, the parse, per-item refusals in a JSON-array batch or NDJSON;
// then canonicaliseEventId, checkEnvelope and the dump into the store on
// every document that parsed, as the Ingestor does. The first byte picks the
// format and the depth limit, so one corpus reaches all three.

#include <cstddef>
#include <cstdint>
#include <string_view>

#include <nlohmann/json.hpp>

#include "http/body.hpp"
#include "pipeline/envelope.hpp"

namespace {

void envelope(nlohmann::json& doc, bool naive_utc) {
  eventflow::pipeline::canonicaliseEventId(doc);
  eventflow::pipeline::Envelope out;
  eventflow::pipeline::EnvelopeOptions options;
  options.naive_timestamps_utc = naive_utc;
  (void)eventflow::pipeline::checkEnvelope(doc, eventflow::SystemTime{}, "corr", out, options);
  // The accepted document is serialised into the store: dump() recurses.
  (void)doc.dump();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using eventflow::http::BodyFormat;
  if (size == 0) return 0;
  const std::uint8_t mode = data[0];
  const std::string_view body(reinterpret_cast<const char*>(data + 1), size - 1);
  // The default limit mostly; sometimes a small one, to reach the refusal.
  const std::size_t max_depth = (mode & 0x08) ? 1 + (mode >> 4) : 64;
  const bool naive_utc = (mode & 0x04) == 0;
  static constexpr BodyFormat kFormats[] = {BodyFormat::single, BodyFormat::json_array, BodyFormat::ndjson};
  auto parsed = eventflow::http::parseBody(body, kFormats[mode % 3], max_depth);
  for (std::size_t i = 0; i < parsed.docs.size(); ++i)
    if (!parsed.item_refused[i]) envelope(parsed.docs[i], naive_utc);
  return 0;
}
