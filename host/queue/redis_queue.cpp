// Redis Streams queue. Per pipeline: stream <prefix><pipeline> and consumer
// group "eventflow". Each worker thread reads as its own consumer (host:pid:n)
// on its own connection, since XREADGROUP BLOCK holds it. The protocol is in
// resp.hpp and redis_connection.hpp; taking over stopped consumers' entries
// in redis_claim.cpp.

#include "queue/redis_queue.hpp"

#include <Poco/Exception.h>

#include <algorithm>
#include <optional>
#include <string_view>

namespace eventflow::queue {

bool decode(Reply& entry, const std::string& pipeline, Message& m) {
  Reply* e = array(entry);
  if (!e || e->items.size() < 2) return false;
  m.token = bulk(std::move(e->items[0]));
  Reply* fields = array(e->items[1]);
  if (!fields) return false;
  auto& f = fields->items;
  for (std::size_t i = 0; i + 1 < f.size(); i += 2) {
    const std::string_view key = f[i].text;
    Reply& value = f[i + 1];
    if (key == "id") m.id = bulk(std::move(value));
    else if (key == "type") m.type = bulk(std::move(value));
    else if (key == "cid") m.correlation_id = bulk(std::move(value));
    else if (key == "at") m.received_at = SystemTime(std::chrono::milliseconds(integer(value)));
    else if (key == "attempts") m.attempts = static_cast<unsigned>(integer(value));
    else if (key == "payload") m.payload = bulk(std::move(value));
    else if (key == "sinks") m.sinks_done = static_cast<std::uint32_t>(integer(value));
    else if (key == "due") m.not_before = SystemTime(std::chrono::milliseconds(integer(value)));
    else if (key == "again") m.maybe_settled = integer(value) != 0;
  }
  m.pipeline = pipeline;
  return !m.id.empty();
}

std::vector<Message> RedisQueue::take(const std::string& pipeline, unsigned worker, std::size_t max,
                                      std::chrono::milliseconds wait) {
  std::vector<Message> out;
  Lane* lane = laneOf(pipeline);
  if (!lane) return out;
  {
    std::lock_guard lock(lane->mutex);
    while (!lane->ready.empty() && out.size() < max) {
      out.push_back(std::move(lane->ready.front()));
      lane->ready.pop_front();
    }
  }
  if (closed_) return out;
  Connection& conn = reader(pipeline, worker);
  const std::string consumer = consumer_prefix_ + std::to_string(worker);
  if (!out.empty()) {
    markStarted(conn, pipeline, consumer, out);
    return out;
  }
  try {
    ensureGroup(conn, pipeline, wait);
    if (claimDue(*lane)) claim(conn, pipeline, consumer, max, *lane, out);
    if (!out.empty()) return out;
    if (deliverOwned(conn, pipeline, consumer, *lane, out)) return out;
    Command cmd;
    cmd << "XREADGROUP" << "GROUP" << kGroup << consumer << "COUNT" << static_cast<long long>(max) << "BLOCK"
        << static_cast<long long>(wait.count()) << "STREAMS" << stream(pipeline) << ">";
    Reply answer = conn.call(cmd, wait);
    Reply* reply = array(answer);
    if (!reply) return out;
    // Entries no EventFlow wrote (another program on this prefix): one
    // would fail every group commit it joined, so it is dropped, loudly.
    std::vector<std::string> junk;
    for (auto& s : reply->items) {
      Reply* pair = array(s);
      if (!pair || pair->items.size() < 2) continue;
      Reply* entries = array(pair->items[1]);
      if (!entries) continue;
      for (auto& e : entries->items) {
        Message m;
        if (decode(e, pipeline, m) && isUuid(m.id)) out.push_back(std::move(m));
        else if (!m.token.empty()) junk.push_back(std::move(m.token));
      }
    }
    dropForeign(pipeline, junk);
  } catch (const Poco::Exception& e) {
    // NOGROUP after Redis lost its data, or Redis is down: start over.
    conn.reset();
    noteFailure("redis read failed", e.displayText());
    std::this_thread::sleep_for(std::min(wait, std::chrono::milliseconds(500)));
  }
  return out;
}

void RedisQueue::ack(const std::string& pipeline, const std::vector<std::string>& tokens) {
  if (tokens.empty()) return;
  // Acknowledged entries are deleted: the stream then holds only what is
  // unacknowledged, so nothing unacknowledged is ever trimmed.
  Command xack, xdel;
  xack << "XACK" << stream(pipeline) << kGroup;
  xdel << "XDEL" << stream(pipeline);
  for (const auto& t : tokens) {
    if (t.empty()) continue;
    xack << t;
    xdel << t;
  }
  std::string wire;
  xack.appendTo(wire);
  xdel.appendTo(wire);
  (void)withShared([&](Connection& c) -> Expected<void> {
    c.send(wire, 2, std::chrono::seconds(5));
    return {};
  });
  // The next claimed entry may run once this one is acknowledged: should it
  // crash the process, this one is not delivered again.
  if (Lane* lane = laneOf(pipeline)) {
    std::lock_guard lock(lane->mutex);
    if (!lane->suspect.empty() && std::find(tokens.begin(), tokens.end(), lane->suspect) != tokens.end())
      lane->suspect.clear();
  }
}

void RedisQueue::handBack(const std::string& pipeline, std::vector<Message> messages) {
  if (messages.empty()) return;
  // Each entry is replaced by a fresh one, which the next consumer reads
  // with ">" at once (instead of waiting claim_idle to claim it from this
  // consumer) as a first delivery: it did not crash anything here. In one
  // MULTI, so that no failure leaves both or neither.
  std::string wire;
  Command{"MULTI"}.appendTo(wire);
  const std::size_t added = encodeXadds(wire, pipeline, messages);
  Command xack, xdel;
  xack << "XACK" << stream(pipeline) << kGroup;
  xdel << "XDEL" << stream(pipeline);
  for (const auto& m : messages) {
    xack << m.token;
    xdel << m.token;
  }
  xack.appendTo(wire);
  xdel.appendTo(wire);
  Command{"EXEC"}.appendTo(wire);
  auto sent = withShared([&](Connection& c) -> Expected<void> {
    auto replies = c.send(wire, added + 4, std::chrono::seconds(2));
    const Reply& exec = replies.back();
    if (exec.isError() || exec.null) return makeError("EXEC: " + (exec.isError() ? exec.text : "aborted"));
    return {};
  });
  if (!sent)
    log::warn("could not hand entries back; they are claimed after claim_idle",
              {{"pipeline", pipeline}, {"count", std::to_string(messages.size())}, {"error", sent.error().message}});
}

void RedisQueue::close() {
  if (closed_) return;
  // Retries whose backoff passed but which no worker took: handed back.
  for (const auto& [pipeline, lane] : lanes_.all()) {
    std::vector<Message> left;
    {
      std::lock_guard lock(lane->mutex);
      left.assign(std::make_move_iterator(lane->ready.begin()), std::make_move_iterator(lane->ready.end()));
      lane->ready.clear();
      lane->owned.clear();  // never claimed: they stay with the stopped consumer, for the next claimer
    }
    handBack(pipeline, std::move(left));
  }
  forgetConsumers();
  {
    std::lock_guard lock(refresh_mutex_);
    closed_ = true;
  }
  refresh_cv_.notify_all();
  if (refresher_.joinable()) refresher_.join();
}

// After a clean stop this process's consumers that hold nothing are
// deleted: every restart makes new names, and claims read the whole
// consumer list. One that still holds entries (their commit failed) stays,
// so that they are claimed.
void RedisQueue::forgetConsumers() {
  std::vector<std::pair<std::string, std::string>> used;  // pipeline, consumer
  {
    std::lock_guard lock(readers_mutex_);
    for (const auto& [key, conn] : readers_) {
      const auto slash = key.rfind('/');
      used.emplace_back(key.substr(0, slash), consumer_prefix_ + key.substr(slash + 1));
    }
  }
  for (const auto& [pipeline, consumer] : used)
    (void)withShared([&](Connection& c) -> Expected<void> {
      Reply held = c.call(Command{"XPENDING", stream(pipeline), kGroup, "-", "+", "1", consumer});
      if (Reply* rows = array(held); rows && rows->items.empty())
        c.call(Command{"XGROUP", "DELCONSUMER", stream(pipeline), kGroup, consumer});
      return {};
    });
}

// Appends one XADD per message to `wire`; returns how many.
std::size_t RedisQueue::encodeXadds(std::string& wire, const std::string& pipeline,
                                     const std::vector<Message>& messages) const {
  if (messages.empty()) return 0;
  const std::string key = stream(pipeline);
  std::size_t bytes = 0;
  for (const auto& m : messages)
    bytes += key.size() + m.id.size() + m.type.size() + m.correlation_id.size() + m.payload.size() + 160;
  wire.reserve(wire.size() + bytes);
  Command xadd;
  for (const auto& m : messages) {
    xadd.clear();
    xadd << "XADD" << key << "*" << "id" << m.id << "type" << m.type << "cid" << m.correlation_id << "at"
         << static_cast<long long>(
                std::chrono::duration_cast<std::chrono::milliseconds>(m.received_at.time_since_epoch()).count())
         << "attempts" << m.attempts << "payload" << m.payload;
    // Only on entries handed back by a stopping worker: what its retry had done and waits for.
    if (m.sinks_done) xadd << "sinks" << static_cast<long long>(m.sinks_done);
    if (m.maybe_settled) xadd << "again" << 1LL;
    if (m.not_before != SystemTime{})
      xadd << "due"
           << static_cast<long long>(
                  std::chrono::duration_cast<std::chrono::milliseconds>(m.not_before.time_since_epoch()).count());
    xadd.appendTo(wire);
  }
  return messages.size();
}

// Every 100 ms, the stream lengths someone asked for. While Redis does not
// answer the last counts stand (ingest keeps admitting: the store is the
// source of truth and the relay publishes what Redis missed).
void RedisQueue::refreshDepths() {
  std::unique_lock lock(refresh_mutex_);
  while (!refresh_cv_.wait_for(lock, std::chrono::milliseconds(100), [&] { return closed_.load(); })) {
    lock.unlock();
    for (const auto& [pipeline, lane] : lanes_.all()) {
      if (!lane->wanted.exchange(false)) continue;
      // The stream's length and its pending list's size, in one round trip.
      std::string wire;
      Command{"XLEN", stream(pipeline)}.appendTo(wire);
      Command{"XPENDING", stream(pipeline), kGroup}.appendTo(wire);
      long long n = 0;
      std::optional<long long> taken;
      auto counted = withShared([&](Connection& c) -> Expected<void> {
        auto replies = c.send(wire, 2, std::chrono::seconds(1));
        if (replies[0].isError()) return makeError(replies[0].text);
        n = integer(replies[0]);
        // [count, first, last, consumers]; an error before the group exists.
        if (Reply* summary = array(replies[1]); summary && !summary->items.empty()) taken = integer(summary->items[0]);
        return {};
      });
      if (!counted) continue;
      std::lock_guard lane_lock(lane->mutex);
      lane->depth = static_cast<std::size_t>(std::max(n, 0LL));
      if (taken) lane->pending = static_cast<std::size_t>(std::max(*taken, 0LL));
    }
    lock.lock();
  }
}

Expected<void> RedisQueue::withShared(const std::function<Expected<void>(Connection&)>& call) {
  std::unique_ptr<Connection> conn;
  {
    std::lock_guard lock(shared_mutex_);
    if (!shared_.empty()) {
      conn = std::move(shared_.back());
      shared_.pop_back();
    }
  }
  if (!conn) conn = std::make_unique<Connection>(host_, port_, options_.send_timeout);
  Expected<void> result;
  try {
    result = call(*conn);
  } catch (const Poco::Exception& e) {
    conn.reset();
    noteFailure("redis command failed", e.displayText());
    return makeError("redis: " + e.displayText());
  }
  std::lock_guard lock(shared_mutex_);
  if (shared_.size() < options_.connections) shared_.push_back(std::move(conn));
  return result;
}

// A poison event is dead-lettered within max_deliveries × claim_idle of its
// first crash; a week's expiry outlasts any such wait and still cleans up.
void RedisQueue::noteCrash(const std::string& event_id, const std::string& stage, const std::string& plugin) {
  auto noted = withShared([&](Connection& c) -> Expected<void> {
    c.call(Command{"SET", crashKey(event_id), stage + "\n" + plugin, "EX", "604800"});
    return {};
  });
  if (!noted)
    log::warn("could not note the crash in Redis; a poison record for it will not name the plugin",
              {{"event_id", event_id}, {"error", noted.error().message}});
}

std::unique_ptr<Queue> makeRedisQueue(const RedisOptions& options, const std::vector<std::string>& pipelines) {
  return std::make_unique<RedisQueue>(options, pipelines);
}

}  // namespace eventflow::queue
