#include "http.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdint>
#include <istream>
#include <optional>
#include <ostream>
#include <stdexcept>
#include <string_view>
#include <thread>

#include <Poco/DateTime.h>
#include <Poco/DateTimeFormat.h>
#include <Poco/DateTimeParser.h>
#include <Poco/Exception.h>
#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/Timespan.h>
#include <Poco/Timestamp.h>
#include <Poco/URI.h>

#include <eventflow/time.hpp>

#include "common/duration.hpp"

namespace eventflow::plugins {

struct HttpSink::Reply {
  int status = 0;  // 0: no HTTP answer, and error says why
  bool timed_out = false;
  std::string error;
  std::string reason_phrase;
  std::string body;  // the first kSnippetBytes of it
  std::string location;
  std::optional<std::chrono::seconds> retry_after;
};

namespace {

constexpr std::size_t kSnippetBytes = 200;
// A longer answer is not read to its end: closing the connection is cheaper.
constexpr std::size_t kMaxDrainBytes = 64 * 1024;
// Retry-After up to this long is waited out inside write(), at most this
// long in all per call, so a worker is never held for long. A longer wait is
// left to the host's backoff, which waits on a timer without blocking a
// worker; the reason then names the server's wish.
constexpr std::chrono::seconds kMaxInlineWait{2};
constexpr std::chrono::milliseconds kMaxTimeout = std::chrono::hours(1);

constexpr std::array<std::string_view, 6> kReservedHeaders{
    "idempotency-key", "x-correlation-id", "host", "content-length", "transfer-encoding", "connection"};

std::string lower(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c); });
  return out;
}

bool isToken(std::string_view name) {
  constexpr std::string_view kSymbols = "!#$%&'*+-.^_`|~";
  return !name.empty() && std::all_of(name.begin(), name.end(), [&](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           kSymbols.find(c) != std::string_view::npos;
  });
}

bool isRetryStatus(int status) { return status == 408 || status == 429 || (status >= 500 && status <= 599); }

std::string_view trim(std::string_view text) {
  const std::size_t first = text.find_first_not_of(" \t");
  if (first == std::string_view::npos) return {};
  return text.substr(first, text.find_last_not_of(" \t") - first + 1);
}

// RFC 9110 §10.2.3: delay-seconds or an HTTP-date (IMF-fixdate, or the two
// obsolete forms a recipient must still accept).
std::optional<std::chrono::seconds> parseRetryAfter(std::string_view raw) {
  const std::string_view value = trim(raw);
  if (value.empty()) return std::nullopt;
  if (std::all_of(value.begin(), value.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    std::int64_t seconds = 0;
    if (value.size() > 12 || std::from_chars(value.data(), value.data() + value.size(), seconds).ec != std::errc{})
      return std::nullopt;
    return std::chrono::seconds(seconds);
  }
  const std::string text(value);
  using Poco::DateTimeFormat;
  for (const std::string* format :
       {&DateTimeFormat::HTTP_FORMAT, &DateTimeFormat::RFC850_FORMAT, &DateTimeFormat::ASCTIME_FORMAT}) {
    Poco::DateTime date;
    int tzd = 0;
    if (!Poco::DateTimeParser::tryParse(*format, text, date, tzd)) continue;
    date.makeUTC(tzd);
    const Poco::Timestamp::TimeDiff micros = date.timestamp() - Poco::Timestamp();
    return std::chrono::seconds(micros <= 0 ? 0 : (micros + Poco::Timespan::SECONDS - 1) / Poco::Timespan::SECONDS);
  }
  return std::nullopt;
}

// A reason ends up in log lines and JSON documents, so it must be one line of
// valid UTF-8, and cutting a body at 200 bytes may split a character.
std::string printable(const std::string& bytes) {
  const std::string quoted = nlohmann::json(bytes).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  std::string text = nlohmann::json::parse(quoted).get<std::string>();
  for (char& c : text)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = ' ';
  return text;
}

// Reads the response body so the connection can carry the next request;
// false when the connection cannot (cut off, or too long to be worth reading).
bool readBody(std::istream& in, std::string& snippet) {
  std::array<char, 4096> buffer{};
  std::size_t total = 0;
  while (total <= kMaxDrainBytes) {
    in.read(buffer.data(), buffer.size());
    const auto count = static_cast<std::size_t>(in.gcount());
    if (snippet.size() < kSnippetBytes) snippet.append(buffer.data(), std::min(count, kSnippetBytes - snippet.size()));
    total += count;
    if (!in) return in.eof() && !in.bad();
  }
  return false;
}

std::string describe(int status, const std::string& phrase) {
  return "HTTP " + std::to_string(status) + (phrase.empty() ? "" : " " + phrase);
}

}  // namespace

HttpSink::HttpSink(const nlohmann::json& config, Context& context) : context_(context) {
  if (!config.is_object()) throw std::invalid_argument("http: config must be an object");

  const auto url = config.find("url");
  if (url == config.end() || !url->is_string() || url->get_ref<const std::string&>().empty())
    throw std::invalid_argument("http: url is required (http://host[:port]/path)");
  Poco::URI uri;
  try {
    uri = Poco::URI(url->get<std::string>());
  } catch (const Poco::Exception& e) {
    throw std::invalid_argument("http: url " + url->dump() + " is not a URL: " + e.displayText());
  }
  if (uri.getScheme() == "https")
    throw std::invalid_argument("http: url " + url->dump() +
                                " is https, which this sink does not support yet; use http:// to a local "
                                "TLS-terminating proxy");
  if (uri.getScheme() != "http" || uri.getHost().empty())
    throw std::invalid_argument("http: url " + url->dump() + " is not an http:// URL with a host");
  if (!uri.getUserInfo().empty())
    throw std::invalid_argument("http: url must not carry credentials; send them with headers (Authorization)");
  path_ = uri.getPathAndQuery();
  if (path_.empty()) path_ = "/";

  if (const auto it = config.find("method"); it != config.end()) {
    if (!it->is_string() || (*it != "POST" && *it != "PUT"))
      throw std::invalid_argument("http: method must be \"POST\" or \"PUT\", not " + it->dump());
    method_ = it->get<std::string>();
  }

  if (const auto it = config.find("timeout"); it != config.end()) {
    if (!it->is_string()) throw std::invalid_argument("http: timeout must be a duration string such as \"5s\"");
    timeout_text_ = it->get<std::string>();
  }
  const std::optional<std::chrono::milliseconds> timeout =
      parseConfigDuration(timeout_text_, std::chrono::milliseconds(1), kMaxTimeout);
  if (!timeout)
    throw std::invalid_argument("http: timeout \"" + timeout_text_ +
                                "\" is not a duration between 1ms and 1h (\"250ms\", \"5s\", \"1m\")");

  if (const auto it = config.find("headers"); it != config.end()) {
    if (!it->is_object()) throw std::invalid_argument("http: headers must be an object of name: value strings");
    for (const auto& [name, value] : it->items()) {
      if (!isToken(name)) throw std::invalid_argument("http: header name \"" + name + "\" is not an HTTP token");
      const std::string key = lower(name);
      if (std::find(kReservedHeaders.begin(), kReservedHeaders.end(), key) != kReservedHeaders.end())
        throw std::invalid_argument("http: header " + name + " is set by the sink and cannot be configured");
      if (!value.is_string() || value.get_ref<const std::string&>().find_first_of(std::string("\r\n\0", 3)) !=
                                    std::string::npos)
        throw std::invalid_argument("http: header " + name + " must be a string on one line");
      headers_.emplace_back(name, value.get<std::string>());
    }
  }

  target_ = method_ + " http://" + uri.getAuthority();
  session_ = std::make_unique<Poco::Net::HTTPClientSession>(uri.getHost(), uri.getPort());
  session_->setKeepAlive(true);
  session_->setTimeout(Poco::Timespan(std::chrono::duration_cast<std::chrono::microseconds>(*timeout).count()));
}

HttpSink::~HttpSink() = default;

std::vector<Result> HttpSink::write(std::span<Event* const> events) {
  std::vector<Result> results;
  results.reserve(events.size());
  std::chrono::seconds wait_budget = kMaxInlineWait;
  std::optional<Result> held_back;
  for (const Event* event : events) {
    if (held_back) {
      results.push_back(*held_back);
      continue;
    }
    std::string detail;
    Result result = deliver(*event, wait_budget, detail);
    // A retry means the endpoint is down or asks for a pause, and the rest of
    // the call would only add load; a reject concerns its own event only.
    if (result.status() == Result::Status::retry)
      held_back = Result::retry(said("not sent after an earlier event of the batch got " + detail),
                                result.errorType());
    results.push_back(std::move(result));
  }
  return results;
}

Result HttpSink::deliver(const Event& event, std::chrono::seconds& wait_budget, std::string& detail) {
  std::string body;
  try {
    body = event.body.dump();
  } catch (const nlohmann::json::exception& e) {
    detail = std::string("the event body cannot be sent as JSON: ") + e.what();
    return Result::reject(said(detail), "sink_rejected");
  }

  Reply reply = exchange(event, body);
  if (isRetryStatus(reply.status) && reply.retry_after && *reply.retry_after <= wait_budget) {
    std::this_thread::sleep_for(*reply.retry_after);
    wait_budget -= *reply.retry_after;
    reply = exchange(event, body);
  }

  if (reply.status == 0) {
    detail = reply.error;
    return Result::retry(said(detail), "sink_unavailable");
  }
  if (reply.status >= 200 && reply.status <= 299) return Result::ok();
  const std::string error_type = "http_status_" + std::to_string(reply.status);
  detail = describe(reply.status, reply.reason_phrase);
  if (isRetryStatus(reply.status)) {
    if (reply.retry_after) detail += ", retry after " + std::to_string(reply.retry_after->count()) + "s";
    return Result::retry(said(detail), error_type);
  }
  // Redirects are not followed: a webhook that moved is a config to fix.
  if (!reply.location.empty()) detail += " to " + printable(reply.location);
  if (!reply.body.empty()) detail += ": " + printable(reply.body);
  return Result::reject(said(detail), error_type);
}

HttpSink::Reply HttpSink::exchange(const Event& event, const std::string& body) {
  Reply reply = attempt(event, body);
  if (reply.status == 0 && !reply.timed_out) {
    // A keep-alive connection the server closed while idle fails only when it
    // is next used. Sending again is safe: the request carries its
    // Idempotency-Key. A timeout is not repeated, since that would double the
    // time a slow endpoint holds the worker.
    context_.log(LogLevel::debug, said(reply.error + "; reconnecting once"));
    reply = attempt(event, body);
    if (reply.status == 0 && !reply.timed_out) reply.error += " (also after reconnecting)";
  }
  return reply;
}

HttpSink::Reply HttpSink::attempt(const Event& event, const std::string& body) {
  Reply reply;
  try {
    Poco::Net::HTTPRequest request(method_, path_, Poco::Net::HTTPMessage::HTTP_1_1);
    request.setContentType("application/json");
    request.setContentLength(static_cast<std::streamsize>(body.size()));
    request.setKeepAlive(true);
    request.set("Idempotency-Key", event.id);
    if (!event.correlation_id.empty()) request.set("X-Correlation-ID", event.correlation_id);
    for (const auto& [name, value] : headers_) request.set(name, value);

    std::ostream& out = session_->sendRequest(request);
    out.write(body.data(), static_cast<std::streamsize>(body.size()));
    Poco::Net::HTTPResponse response;
    std::istream& in = session_->receiveResponse(response);
    reply.status = static_cast<int>(response.getStatus());
    reply.reason_phrase = response.getReason();
    reply.location = response.get("Location", "");
    if (response.has("Retry-After")) reply.retry_after = parseRetryAfter(response.get("Retry-After"));
    if (!readBody(in, reply.body) || !response.getKeepAlive()) session_->reset();
    return reply;
  } catch (const Poco::TimeoutException& e) {
    reply = Reply{};
    reply.timed_out = true;
    reply.error = "no answer within " + timeout_text_ + " (" + e.displayText() + ")";
  } catch (const Poco::Exception& e) {
    reply = Reply{};
    reply.error = e.displayText();
  } catch (const std::exception& e) {
    reply = Reply{};
    reply.error = e.what();
  }
  // A late answer to this request must not be read as the next one's.
  session_->reset();
  return reply;
}

}  // namespace eventflow::plugins
