#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include <eventflow/plugin.hpp>

namespace Poco::Redis {
class Client;
}

namespace eventflow::plugins {

/// JSON Schema (draft 7) of the stage config; here so tests check configs
/// against the schema the host sees.
inline constexpr char kRedisStreamConfigSchema[] = R"json({
  "$schema": "http://json-schema.org/draft-07/schema#",
  "type": "object",
  "properties": {
    "url": {
      "description": "The Redis server: redis://[[user]:password@]host[:port][/db]. Not Redis Cluster.",
      "type": "string",
      "pattern": "^redis://"
    },
    "stream": {
      "description": "Stream key the events are added to (XADD).",
      "type": "string",
      "minLength": 1
    },
    "maxlen": {
      "description": "Trim the stream to about this many entries at each add (XADD MAXLEN ~ n); 0 or absent: no trimming.",
      "type": "integer",
      "minimum": 0
    },
    "exact_maxlen": {
      "description": "Trim to exactly maxlen (MAXLEN = n) instead of about it (~), which Redis does more cheaply, whole macro nodes at a time. Default false.",
      "type": "boolean"
    },
    "dedupe_window": {
      "description": "How long an event_id is remembered after its add, so a redelivered event is not added again (\"1h\"; 1s to 30d). Each remembered id is one Redis key of about 200 bytes. Default 1h.",
      "type": "string",
      "pattern": "^[0-9]+(\\.[0-9]+)?(ms|s|m|h|d)?$"
    },
    "timeout": {
      "description": "Limit on connecting and on each wait for Redis to answer (\"250ms\", \"5s\"; at most 1m). Default 5s.",
      "type": "string",
      "pattern": "^[0-9]+(\\.[0-9]+)?(ms|s|m|h|d)?$"
    }
  },
  "required": ["url", "stream"],
  "additionalProperties": false
})json";

/// Adds each event to a Redis stream of the user's (XADD) with the fields
/// event_id, event_type, pipeline and body (the JSON document). A batch goes
/// out as one pipeline of EVALSHA calls, one round trip. Each call runs a
/// script that adds the event only if its event_id was not added within
/// `dedupe_window`, and then remembers it in the key `<stream>:dedupe:<id>`,
/// atomically; so a redelivery in that window adds nothing.
///
/// Redis unreachable, a dropped connection or a timeout is a retry
/// ("sink_unavailable"); an error reply (WRONGTYPE, OOM) is a retry
/// ("sink_error") for its event only.
class RedisStreamSink final : public Sink {
 public:
  RedisStreamSink(const nlohmann::json& config, Context& context);
  ~RedisStreamSink() override;
  std::vector<Result> write(std::span<Event* const> events) override;

 private:
  struct Outcome;
  void connect();
  Outcome send(std::span<Event* const> events);

  Context& context_;
  std::string host_;
  int port_ = 6379;
  std::string user_;
  std::string password_;
  int database_ = 0;
  std::string where_;  // redis://host:port/db, without credentials
  std::string stream_;
  std::uint64_t maxlen_ = 0;
  bool exact_maxlen_ = false;
  std::chrono::seconds dedupe_window_{3600};
  std::chrono::milliseconds timeout_{5000};
  std::unique_ptr<Poco::Redis::Client> client_;
  std::string script_sha_;
};

}  // namespace eventflow::plugins
