#include "redis_stream.hpp"

EVENTFLOW_PLUGIN(eventflow::plugins::RedisStreamSink, "redis-stream", "0.1.0",
                 "Adds each event to a Redis stream (XADD, MAXLEN ~), pipelined per batch, once per event_id within dedupe_window.",
                 ::eventflow::plugins::kRedisStreamConfigSchema)
