#include "http/body.hpp"

#include "http/json_scan.hpp"

namespace eventflow::http {
namespace {

// The body (or one batch item) holds a number beyond a double's range.
BodyRefusal hugeNumber(std::string_view text, const std::string& where) {
  const std::string path = pathOfHugeNumber(text).value_or(std::string());
  return {"number_out_of_range",
          (where.empty() ? "" : where + ": ") + (path.empty() ? "a number" : "'" + path + "'") +
              " is beyond the range of a double (about 1.8e308)",
          path};
}

// A batch read item by item, each held to the limit on its own: after the
// whole array failed the pre-scan or held a number out of range, so that
// only the items at fault are refused. arrayElements and nestsWithin are
// single passes with a counter, never recursion, whatever the nesting.
void parseItems(const std::vector<std::string_view>& items, std::size_t max_depth, ParsedBody& out) {
  for (const auto item : items) {
    const std::string where = "item " + std::to_string(out.docs.size());
    auto& refused = out.item_refused.emplace_back();
    auto& doc = out.docs.emplace_back(nullptr);
    if (!nestsWithin(item, max_depth)) {
      refused = tooDeep(item, max_depth, max_depth, where);
      continue;
    }
    try {
      doc = nlohmann::json::parse(item);
    } catch (const nlohmann::json::out_of_range&) {
      refused = hugeNumber(item, where);
    } catch (const nlohmann::json::parse_error& e) {
      refused = BodyRefusal{"malformed_json", where + " is not valid JSON: " + e.what(), {}};
    }
  }
}

void parseJson(std::string_view body, bool batch, std::size_t max_depth, ParsedBody& out) {
  const std::size_t allowed = batch ? max_depth + 1 : max_depth;
  if (!nestsWithin(body, allowed)) {
    const auto items = batch ? arrayElements(body) : std::nullopt;
    if (!items) {
      out.refused = tooDeep(body, allowed, max_depth, batch ? "an event of the batch" : "");
      return;
    }
    return parseItems(*items, max_depth, out);
  }
  nlohmann::json doc;
  try {
    doc = nlohmann::json::parse(body);
  } catch (const nlohmann::json::parse_error& e) {
    out.refused = BodyRefusal{"malformed_json", std::string("body is not valid JSON: ") + e.what(), {}};
    return;
  } catch (const nlohmann::json::out_of_range&) {
    const auto items = batch ? arrayElements(body) : std::nullopt;
    if (!items) {
      out.refused = hugeNumber(body, "");
      return;
    }
    return parseItems(*items, max_depth, out);
  }
  if (!batch) {
    out.docs.push_back(std::move(doc));
  } else if (!doc.is_array()) {
    out.refused = BodyRefusal{"invalid_batch", "a batch body is a JSON array of events", {}};
    return;
  } else {
    out.docs = doc.get<std::vector<nlohmann::json>>();
  }
  out.item_refused.resize(out.docs.size());
}

void parseLines(std::string_view body, std::size_t max_depth, ParsedBody& out) {
  std::size_t n = 0;
  while (!body.empty()) {
    const auto eol = body.find('\n');
    const std::string_view line = body.substr(0, eol);
    body.remove_prefix(eol == std::string_view::npos ? body.size() : eol + 1);
    ++n;
    if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;
    const std::string where = "line " + std::to_string(n);
    auto& refused = out.item_refused.emplace_back();
    auto& doc = out.docs.emplace_back(nullptr);
    if (!nestsWithin(line, max_depth)) {
      refused = tooDeep(line, max_depth, max_depth, where);
      continue;
    }
    doc = nlohmann::json::parse(line, nullptr, false);
    if (doc.is_discarded()) {
      doc = nullptr;
      refused = pathOfHugeNumber(line) ? hugeNumber(line, where)
                                       : BodyRefusal{"malformed_json", where + " is not valid JSON", {}};
    }
  }
}

}  // namespace

BodyRefusal tooDeep(std::string_view text, std::size_t max, std::size_t configured, const std::string& where) {
  const std::string path = pathTooDeep(text, max);
  return {"too_deep",
          (where.empty() ? "the body" : where) + " nests arrays and objects deeper than server.max_json_depth (" +
              std::to_string(configured) + ")" + (path.empty() ? "" : " at '" + path + "'"),
          path.substr(0, path.find('['))};  // the field, without the levels of nesting
}

ParsedBody parseBody(std::string_view body, BodyFormat format, std::size_t max_depth) {
  ParsedBody out;
  if (format == BodyFormat::ndjson) parseLines(body, max_depth, out);
  else parseJson(body, format == BodyFormat::json_array, max_depth, out);
  if (!out.refused && format != BodyFormat::single && out.docs.empty())
    out.refused = BodyRefusal{"invalid_batch", "the batch is empty", {}};
  return out;
}

}  // namespace eventflow::http
