#include "redis_stream.hpp"

#include <charconv>
#include <stdexcept>
#include <utility>

#include <Poco/Exception.h>
#include <Poco/Redis/Array.h>
#include <Poco/Redis/Client.h>
#include <Poco/Redis/Error.h>
#include <Poco/Redis/Type.h>
#include <Poco/Timespan.h>
#include <Poco/URI.h>

#include "common/duration.hpp"

namespace eventflow::plugins {
namespace {

// KEYS[1] the stream, KEYS[2] the event's dedupe key; ARGV: window seconds,
// maxlen ("0": none), "~" or "=", event_id, event_type, pipeline, body.
// Redis runs a script atomically, so two workers adding one event at once
// still add it once. Returns {entry id, 1 if it was already there}.
constexpr const char* kAddScript = R"lua(
local seen = redis.call('GET', KEYS[2])
if seen then return {seen, 1} end
local id
if ARGV[2] ~= '0' then
  id = redis.call('XADD', KEYS[1], 'MAXLEN', ARGV[3], ARGV[2], '*',
                  'event_id', ARGV[4], 'event_type', ARGV[5], 'pipeline', ARGV[6], 'body', ARGV[7])
else
  id = redis.call('XADD', KEYS[1], '*',
                  'event_id', ARGV[4], 'event_type', ARGV[5], 'pipeline', ARGV[6], 'body', ARGV[7])
end
redis.call('SET', KEYS[2], id, 'EX', ARGV[1])
return {id, 0}
)lua";

std::string text(const nlohmann::json& config, const char* key) {
  const auto it = config.find(key);
  if (it == config.end()) return {};
  if (!it->is_string() || it->get_ref<const std::string&>().empty())
    throw std::invalid_argument(std::string("redis-stream: ") + key + " must be a non-empty string, not " + it->dump());
  return it->get<std::string>();
}

std::chrono::milliseconds duration(const nlohmann::json& config, const char* key, std::chrono::milliseconds fallback,
                                   std::chrono::milliseconds min, std::chrono::milliseconds max, const char* range) {
  const std::string value = text(config, key);
  if (value.empty()) return fallback;
  const auto parsed = parseConfigDuration(value, min, max);
  if (!parsed)
    throw std::invalid_argument(std::string("redis-stream: ") + key + " \"" + value + "\" is not a duration " + range);
  return *parsed;
}

}  // namespace

struct RedisStreamSink::Outcome {
  std::vector<Result> results;
  bool noscript = false;  // Redis lost the script (restart, SCRIPT FLUSH)
};

RedisStreamSink::RedisStreamSink(const nlohmann::json& config, Context& context) : context_(context) {
  if (!config.is_object()) throw std::invalid_argument("redis-stream: config must be an object");
  const std::string url = text(config, "url");
  if (url.empty()) throw std::invalid_argument("redis-stream: url is required (redis://host:port)");
  Poco::URI uri;
  try {
    uri = Poco::URI(url);
  } catch (const Poco::Exception& e) {
    throw std::invalid_argument("redis-stream: url is not a URL: " + e.displayText());
  }
  if (uri.getScheme() != "redis" || uri.getHost().empty())
    throw std::invalid_argument("redis-stream: url must be redis://[[user]:password@]host[:port][/db]");
  host_ = uri.getHost();
  port_ = uri.getPort() == 0 ? 6379 : uri.getPort();
  if (const std::string info = uri.getUserInfo(); !info.empty()) {
    const std::size_t colon = info.find(':');
    user_ = info.substr(0, colon);
    password_ = colon == std::string::npos ? std::string() : info.substr(colon + 1);
    if (password_.empty()) throw std::invalid_argument("redis-stream: url names a user but no password");
  }
  if (const std::string path = uri.getPath(); !path.empty() && path != "/") {
    const std::string db = path.substr(1);
    const auto [end, ec] = std::from_chars(db.data(), db.data() + db.size(), database_);
    if (ec != std::errc{} || end != db.data() + db.size() || database_ < 0 || database_ > 65535)
      throw std::invalid_argument("redis-stream: url path /" + db + " is not a database number");
  }
  where_ = "redis://" + host_ + ":" + std::to_string(port_) + (database_ != 0 ? "/" + std::to_string(database_) : "");
  stream_ = text(config, "stream");
  if (stream_.empty()) throw std::invalid_argument("redis-stream: stream is required (the stream key)");
  if (const auto it = config.find("maxlen"); it != config.end()) {
    if (!it->is_number_integer() || it->get<std::int64_t>() < 0) throw std::invalid_argument("redis-stream: maxlen must be 0 or more, not " + it->dump());
    maxlen_ = it->get<std::uint64_t>();
  }
  if (const auto it = config.find("exact_maxlen"); it != config.end()) {
    if (!it->is_boolean()) throw std::invalid_argument("redis-stream: exact_maxlen must be true or false");
    exact_maxlen_ = it->get<bool>();
  }
  dedupe_window_ = std::chrono::duration_cast<std::chrono::seconds>(
      duration(config, "dedupe_window", std::chrono::hours(1), std::chrono::seconds(1), std::chrono::hours(24 * 30),
               "from 1s to 30d"));
  timeout_ = duration(config, "timeout", std::chrono::seconds(5), std::chrono::milliseconds(1), std::chrono::minutes(1),
                      "from 1ms to 1m");
  // Connecting waits for the first write, so neither `eventflow validate`
  // nor a start while Redis is down touches the network here.
}

RedisStreamSink::~RedisStreamSink() = default;

void RedisStreamSink::connect() {
  const Poco::Timespan timeout(std::chrono::duration_cast<std::chrono::microseconds>(timeout_).count());
  auto client = std::make_unique<Poco::Redis::Client>();
  client->connect(host_, port_, timeout);
  client->setReceiveTimeout(timeout);
  const auto expectOk = [&](Poco::Redis::Array command, const char* what) {
    const auto reply = client->execute<std::string>(command);
    if (reply != "OK") throw Poco::Exception(std::string(what) + " answered " + reply);
  };
  if (!password_.empty()) {
    Poco::Redis::Array auth;
    auth << "AUTH";
    if (!user_.empty()) auth << user_;
    auth << password_;
    expectOk(auth, "AUTH");
  }
  if (database_ != 0) {
    Poco::Redis::Array select;
    select << "SELECT" << std::to_string(database_);
    expectOk(select, "SELECT");
  }
  Poco::Redis::Array load;
  load << "SCRIPT" << "LOAD" << kAddScript;
  const auto sha = client->execute<Poco::Redis::BulkString>(load);
  if (sha.isNull()) throw Poco::Exception("SCRIPT LOAD answered nil");
  script_sha_ = sha.value();
  client_ = std::move(client);
}

RedisStreamSink::Outcome RedisStreamSink::send(std::span<Event* const> events) {
  const std::string window = std::to_string(dedupe_window_.count());
  const std::string maxlen = std::to_string(maxlen_);
  const char* mode = exact_maxlen_ ? "=" : "~";
  std::vector<Poco::Redis::Array> commands;
  commands.reserve(events.size());
  for (const Event* event : events) {
    Poco::Redis::Array command;
    command << "EVALSHA" << script_sha_ << "2" << stream_ << stream_ + ":dedupe:" + event->id << window << maxlen
            << mode << event->id << event->type << event->pipeline
            << event->body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    commands.push_back(std::move(command));
  }
  const Poco::Redis::Array replies = client_->sendCommands(commands);
  Outcome out;
  out.results.reserve(events.size());
  for (std::size_t i = 0; i < events.size(); ++i) {
    if (i < replies.size() && replies.getType(i) == Poco::Redis::RedisType::REDIS_ARRAY) {
      const auto reply = replies.get<Poco::Redis::Array>(i);
      if (reply.size() == 2 && reply.getType(1) == Poco::Redis::RedisType::REDIS_INTEGER &&
          reply.get<Poco::Int64>(1) == 1)
        context_.count("redis_stream_duplicates");
      out.results.push_back(Result::ok());
      continue;
    }
    std::string error = "an answer that is not the script's";
    if (i < replies.size() && replies.getType(i) == Poco::Redis::RedisType::REDIS_ERROR)
      error = replies.get<Poco::Redis::Error>(i).getMessage();
    if (error.starts_with("NOSCRIPT")) out.noscript = true;
    out.results.push_back(Result::retry(where_ + " stream " + stream_ + ": " + error, "sink_error"));
  }
  return out;
}

std::vector<Result> RedisStreamSink::write(std::span<Event* const> events) {
  std::string error;
  // Twice at most: a connection Redis closed while idle fails only when next
  // used. Sending a batch again is safe, since the script adds an event_id
  // once per dedupe window.
  for (int attempt = 0; attempt < 2; ++attempt) {
    const bool fresh = client_ == nullptr;
    try {
      if (!client_) connect();
      Outcome out = send(events);
      if (out.noscript) {
        client_.reset();  // the next connect loads the script again
        continue;
      }
      return std::move(out.results);
    } catch (const Poco::Exception& e) {
      error = e.displayText();
    } catch (const std::exception& e) {
      error = e.what();
    }
    client_.reset();
    if (fresh) break;  // a new connection failed: Redis is down, not idle
  }
  if (error.empty()) error = "the script is missing after loading it again";
  return std::vector<Result>(events.size(), Result::retry(where_ + ": " + error, "sink_unavailable"));
}

}  // namespace eventflow::plugins
