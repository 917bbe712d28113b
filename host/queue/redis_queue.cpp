// Redis Streams queue on Poco::Redis. Per pipeline: stream <prefix><pipeline>
// and consumer group "eventflow". Each worker thread reads as its own consumer
// (host:pid:n) on its own connection, since XREADGROUP BLOCK holds it.

#include <Poco/Net/NetException.h>
#include <Poco/Net/SocketAddress.h>
#include <Poco/Net/StreamSocket.h>
#include <Poco/Redis/Array.h>
#include <Poco/Redis/RedisStream.h>
#include <Poco/Redis/Type.h>
#include <Poco/Redis/Exception.h>
#include <Poco/URI.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <functional>
#include <thread>
#include <unordered_map>

#include "base/ids.hpp"
#include "base/threads.hpp"
#include "base/log.hpp"
#include "queue/queue.hpp"

namespace eventflow::queue {
namespace {

using Poco::Redis::Array;
using Poco::Redis::BulkString;
using Poco::Redis::RedisType;
using Clock = std::chrono::steady_clock;

constexpr const char* kGroup = "eventflow";

Array command(std::initializer_list<std::string> parts) {
  Array a;
  for (const auto& p : parts) a << p;
  return a;
}

std::string bulk(const RedisType::Ptr& value) {
  if (!value) return {};
  if (auto* b = dynamic_cast<const Poco::Redis::Type<BulkString>*>(value.get()))
    return b->value().isNull() ? std::string() : b->value().value();
  if (auto* s = dynamic_cast<const Poco::Redis::Type<std::string>*>(value.get())) return s->value();
  if (auto* i = dynamic_cast<const Poco::Redis::Type<Poco::Int64>*>(value.get())) return std::to_string(i->value());
  return {};
}

RedisType::Ptr at(const Array& a, std::size_t i) {
  auto it = a.begin();
  std::advance(it, static_cast<std::ptrdiff_t>(i));
  return *it;
}

Poco::Int64 integer(const RedisType::Ptr& value) {
  if (auto* i = dynamic_cast<const Poco::Redis::Type<Poco::Int64>*>(value.get())) return i->value();
  return std::atoll(bulk(value).c_str());
}

const Array* array(const RedisType::Ptr& value) {
  auto* a = dynamic_cast<const Poco::Redis::Type<Array>*>(value.get());
  return a && !a->value().isNull() ? &a->value() : nullptr;
}

// [id, [field, value, ...]] → Message; false when the entry was deleted.
bool decode(const RedisType::Ptr& entry, const std::string& pipeline, Message& m) {
  const Array* e = array(entry);
  if (!e || e->size() < 2) return false;
  m.token = bulk(at(*e, 0));
  const Array* fields = array(at(*e, 1));
  if (!fields) return false;
  for (std::size_t i = 0; i + 1 < fields->size(); i += 2) {
    const std::string key = bulk(at(*fields, i));
    std::string value = bulk(at(*fields, i + 1));
    if (key == "id") m.id = std::move(value);
    else if (key == "type") m.type = std::move(value);
    else if (key == "cid") m.correlation_id = std::move(value);
    else if (key == "at") m.received_at = SystemTime(std::chrono::milliseconds(std::atoll(value.c_str())));
    else if (key == "attempts") m.attempts = static_cast<unsigned>(std::atoi(value.c_str()));
    else if (key == "payload") m.payload = std::move(value);
  }
  m.pipeline = pipeline;
  return !m.id.empty();
}

// One connection speaking RESP with Poco::Redis's own types. Poco 1.11's
// Client owns its socket and leaves Nagle on, which stalls every pipelined
// call (several writes, then a read) by ~40 ms of delayed ACK; this one
// sets TCP_NODELAY.
class Connection {
 public:
  Connection(std::string host, int port) : host_(std::move(host)), port_(port) {}

  /// Sends the commands in one flush and reads one reply each. Throws
  /// Poco::Exception when the connection fails; error replies are returned.
  std::vector<RedisType::Ptr> send(const std::vector<Array>& commands, std::chrono::milliseconds read_timeout) {
    open();
    socket_.setReceiveTimeout(Poco::Timespan((read_timeout + std::chrono::seconds(5)).count() * 1000));
    for (const auto& c : commands) *out_ << c.toString();
    out_->flush();
    std::vector<RedisType::Ptr> replies;
    replies.reserve(commands.size());
    for (std::size_t i = 0; i < commands.size(); ++i) {
      const int marker = in_->get();
      if (marker == std::char_traits<char>::eof()) throw Poco::Redis::RedisException("Redis closed the connection");
      RedisType::Ptr reply = RedisType::createRedisType(static_cast<char>(marker));
      if (reply.isNull()) throw Poco::Redis::RedisException("Redis sent an unknown reply type");
      reply->read(*in_);
      replies.push_back(std::move(reply));
    }
    return replies;
  }

  /// One command; an error reply is thrown as RedisException.
  RedisType::Ptr call(const Array& command, std::chrono::milliseconds read_timeout = std::chrono::seconds(1)) {
    auto reply = std::move(send({command}, read_timeout).front());
    if (reply->isError()) throw Poco::Redis::RedisException(reply->toString());
    return reply;
  }

  void reset() {
    in_.reset();
    out_.reset();
    if (open_) socket_.close();
    open_ = false;
    prepared = false;
  }

  bool prepared = false;  // the consumer group exists as far as this connection knows

 private:
  void open() {
    if (open_) return;
    socket_ = Poco::Net::StreamSocket();
    socket_.connect(Poco::Net::SocketAddress(host_, static_cast<Poco::UInt16>(port_)), Poco::Timespan(2, 0));
    socket_.setNoDelay(true);
    out_ = std::make_unique<Poco::Redis::RedisOutputStream>(socket_);
    in_ = std::make_unique<Poco::Redis::RedisInputStream>(socket_);
    open_ = true;
  }

  std::string host_;
  int port_;
  Poco::Net::StreamSocket socket_;
  std::unique_ptr<Poco::Redis::RedisOutputStream> out_;
  std::unique_ptr<Poco::Redis::RedisInputStream> in_;
  bool open_ = false;
};

class RedisQueue final : public Queue {
 public:
  RedisQueue(const RedisOptions& options, const std::vector<std::string>& pipelines)
      : options_(options), consumer_prefix_(hostName() + ":" + std::to_string(::getpid()) + ":") {
    Poco::URI uri(options.url);
    host_ = uri.getHost().empty() ? "127.0.0.1" : uri.getHost();
    port_ = uri.getPort() ? uri.getPort() : 6379;
    for (const auto& p : pipelines) lanes_.emplace(p, std::make_unique<Lane>());
    refresher_ = std::thread([this] {
      nameThread("ef-queue-depth");
      refreshDepths();
    });
  }

  std::string kind() const override { return "redis"; }

  Expected<void> publish(const std::string& pipeline, std::vector<Message> messages) override {
    if (messages.empty()) return {};
    std::vector<Array> commands;
    commands.reserve(messages.size());
    for (const auto& m : messages) {
      Array a;
      a << "XADD" << stream(pipeline) << "*" << "id" << m.id << "type" << m.type << "cid" << m.correlation_id << "at"
        << std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(m.received_at.time_since_epoch()).count())
        << "attempts" << std::to_string(m.attempts) << "payload" << m.payload;
      commands.push_back(std::move(a));
    }
    return withShared([&](Connection& c) -> Expected<void> {
      for (const auto& r : c.send(commands, std::chrono::seconds(5)))
        if (r->isError()) return makeError("XADD: " + r->toString());
      return {};
    });
  }

  std::vector<Message> take(const std::string& pipeline, unsigned worker, std::size_t max,
                            std::chrono::milliseconds wait) override {
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
    if (!out.empty() || closed_) return out;
    Connection& conn = reader(pipeline, worker);
    const std::string consumer = consumer_prefix_ + std::to_string(worker);
    try {
      ensureGroup(conn, pipeline, wait);
      if (claimDue(*lane)) claim(conn, pipeline, consumer, max, *lane);
      if (deliverOwned(conn, pipeline, consumer, *lane, out)) return out;
      Array cmd;
      cmd << "XREADGROUP" << "GROUP" << kGroup << consumer << "COUNT" << std::to_string(max) << "BLOCK"
          << std::to_string(wait.count()) << "STREAMS" << stream(pipeline) << ">";
      const RedisType::Ptr answer = conn.call(cmd, wait);
      const Array* reply = array(answer);
      if (!reply) return out;
      // Entries no EventFlow wrote (another program on this prefix): one
      // would fail every group commit it joined, so it is dropped, loudly.
      std::vector<std::string> junk;
      for (const auto& s : *reply) {
        const Array* pair = array(s);
        if (!pair || pair->size() < 2) continue;
        const Array* entries = array(at(*pair, 1));
        if (!entries) continue;
        for (const auto& e : *entries) {
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

  void ack(const std::string& pipeline, const std::vector<std::string>& tokens) override {
    if (tokens.empty()) return;
    // Acknowledged entries are deleted: the stream then holds only what is
    // unacknowledged, so nothing unacknowledged is ever trimmed.
    Array xack, xdel;
    xack << "XACK" << stream(pipeline) << kGroup;
    xdel << "XDEL" << stream(pipeline);
    for (const auto& t : tokens) {
      if (t.empty()) continue;
      xack << t;
      xdel << t;
    }
    (void)withShared([&](Connection& c) -> Expected<void> {
      c.send({xack, xdel}, std::chrono::seconds(5));
      return {};
    });
  }

  void redeliver(const std::string& pipeline, Message message) override {
    Lane* lane = laneOf(pipeline);
    if (!lane) return;
    std::lock_guard lock(lane->mutex);
    lane->ready.push_back(std::move(message));
  }

  std::size_t depth(const std::string& pipeline) override {
    Lane* lane = laneOf(pipeline);
    if (!lane) return 0;
    // Ingest asks on every request, on the HTTP event loop: it reads what the
    // refresher thread last counted and never waits on Redis.
    lane->wanted = true;
    std::lock_guard lock(lane->mutex);
    return lane->depth + lane->ready.size();
  }

  Expected<void> ping() override {
    return withShared([&](Connection& c) -> Expected<void> {
      c.call(command({"PING"}));
      return {};
    });
  }

  void close() override {
    {
      std::lock_guard lock(refresh_mutex_);
      closed_ = true;
    }
    refresh_cv_.notify_all();
    if (refresher_.joinable()) refresher_.join();
  }

  ~RedisQueue() override { close(); }

 private:
  struct Lane {
    std::mutex mutex;
    std::deque<Message> ready;  // retries whose backoff has passed
    std::size_t depth = 0;  // XLEN as the refresher last read it
    std::atomic<bool> wanted{false};  // asked for since the last refresh
    std::atomic<std::int64_t> last_claim{0};
    std::deque<std::string> owned;  // claimed from stopped consumers, not yet handed out
  };

  std::string stream(const std::string& pipeline) const { return options_.prefix + pipeline; }

  // Entries no EventFlow wrote (another program on this prefix): one would
  // fail every group commit its state change joined, so they are
  // acknowledged and deleted, loudly, instead of handed out.
  void dropForeign(const std::string& pipeline, const std::vector<std::string>& tokens) {
    if (tokens.empty()) return;
    log::warn("dropped stream entries that are not EventFlow events",
              {{"pipeline", pipeline}, {"count", std::to_string(tokens.size())}});
    ack(pipeline, tokens);
  }

  // Every 100 ms, the stream lengths someone asked for. While Redis does not
  // answer the last counts stand (ingest keeps admitting: the store is the
  // source of truth and the relay publishes what Redis missed).
  void refreshDepths() {
    std::unique_lock lock(refresh_mutex_);
    while (!refresh_cv_.wait_for(lock, std::chrono::milliseconds(100), [&] { return closed_.load(); })) {
      lock.unlock();
      for (auto& [pipeline, lane] : lanes_) {
        if (!lane->wanted.exchange(false)) continue;
        Poco::Int64 n = 0;
        auto counted = withShared([&](Connection& c) -> Expected<void> {
          n = integer(c.call(command({"XLEN", stream(pipeline)})));
          return {};
        });
        if (!counted) continue;
        std::lock_guard lane_lock(lane->mutex);
        lane->depth = static_cast<std::size_t>(std::max<Poco::Int64>(n, 0));
      }
      lock.lock();
    }
  }

  Lane* laneOf(const std::string& pipeline) {
    auto it = lanes_.find(pipeline);
    return it == lanes_.end() ? nullptr : it->second.get();
  }

  Connection& reader(const std::string& pipeline, unsigned worker) {
    std::lock_guard lock(readers_mutex_);
    auto& c = readers_[pipeline + "/" + std::to_string(worker)];
    if (!c) c = std::make_unique<Connection>(host_, port_);
    return *c;
  }

  void ensureGroup(Connection& conn, const std::string& pipeline, std::chrono::milliseconds wait) {
    if (conn.prepared) return;
    try {
      conn.call(command({"XGROUP", "CREATE", stream(pipeline), kGroup, "0", "MKSTREAM"}), wait);
    } catch (const Poco::Redis::RedisException& e) {
      if (e.message().find("BUSYGROUP") == std::string::npos) throw;
    }
    conn.prepared = true;
  }

  // One worker per pipeline looks for dead consumers' entries at a time, a few
  // times per claim_idle.
  bool claimDue(Lane& lane) {
    const auto now = Clock::now().time_since_epoch().count();
    const auto every = std::chrono::duration_cast<Clock::duration>(options_.claim_idle / 4).count();
    auto last = lane.last_claim.load();
    return now - last >= every && lane.last_claim.compare_exchange_strong(last, now);
  }

  // Takes over entries idle for claim_idle with JUSTID, which moves them to
  // us without counting a delivery: an entry is counted only when it is about
  // to run (deliverOwned), so a crash counts against that one entry alone.
  void claim(Connection& conn, const std::string& pipeline, const std::string& consumer, std::size_t max, Lane& lane) {
    const std::string idle = std::to_string(options_.claim_idle.count());
    const RedisType::Ptr pending_reply =
        conn.call(command({"XPENDING", stream(pipeline), kGroup, "IDLE", idle, "-", "+", std::to_string(max)}));
    const Array* pending = array(pending_reply);
    if (!pending || pending->size() == 0) return;
    Array xclaim;
    xclaim << "XCLAIM" << stream(pipeline) << kGroup << consumer << idle;
    std::size_t n = 0;
    for (const auto& p : *pending) {
      const Array* row = array(p);
      if (!row || row->size() < 4) continue;
      xclaim << bulk(at(*row, 0));
      ++n;
    }
    if (n == 0) return;
    xclaim << "JUSTID";
    const RedisType::Ptr claimed_reply = conn.call(xclaim);
    const Array* claimed = array(claimed_reply);
    if (!claimed || claimed->size() == 0) return;
    std::lock_guard lock(lane.mutex);
    for (const auto& id : *claimed) lane.owned.push_back(bulk(id));
    log::info("claimed entries from stopped consumers",
              {{"pipeline", pipeline}, {"count", std::to_string(claimed->size())}});
  }

  // Hands out one claimed entry: claims it again, which counts the delivery
  // and returns its fields, and reads its exact delivery count.
  bool deliverOwned(Connection& conn, const std::string& pipeline, const std::string& consumer, Lane& lane,
                    std::vector<Message>& out) {
    for (;;) {
      std::string id;
      {
        std::lock_guard lock(lane.mutex);
        if (lane.owned.empty()) return false;
        id = std::move(lane.owned.front());
        lane.owned.pop_front();
      }
      const RedisType::Ptr entry_reply = conn.call(command({"XCLAIM", stream(pipeline), kGroup, consumer, "0", id}));
      const Array* entries = array(entry_reply);
      Message m;
      if (!entries || entries->size() == 0 || !decode(at(*entries, 0), pipeline, m)) continue;  // acked meanwhile
      if (!isUuid(m.id)) {
        dropForeign(pipeline, {m.token});
        continue;
      }
      const RedisType::Ptr count_reply = conn.call(command({"XPENDING", stream(pipeline), kGroup, id, id, "1"}));
      const Array* rows = array(count_reply);
      const Array* row = rows && rows->size() > 0 ? array(at(*rows, 0)) : nullptr;
      m.deliveries = row && row->size() >= 4 ? static_cast<unsigned>(integer(at(*row, 3))) : 2;
      out.push_back(std::move(m));
      return true;
    }
  }

  Expected<void> withShared(const std::function<Expected<void>(Connection&)>& call) {
    std::unique_ptr<Connection> conn;
    {
      std::lock_guard lock(shared_mutex_);
      if (!shared_.empty()) {
        conn = std::move(shared_.back());
        shared_.pop_back();
      }
    }
    if (!conn) conn = std::make_unique<Connection>(host_, port_);
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

  // Redis being down is logged once a few seconds, not once per call.
  void noteFailure(const char* what, const std::string& detail) {
    const auto now = Clock::now().time_since_epoch().count();
    auto last = last_failure_log_.load();
    if (now - last < std::chrono::duration_cast<Clock::duration>(std::chrono::seconds(5)).count()) return;
    if (last_failure_log_.compare_exchange_strong(last, now)) log::warn(what, {{"error", detail}});
  }

  RedisOptions options_;
  std::string consumer_prefix_;
  std::string host_;
  int port_ = 6379;
  std::map<std::string, std::unique_ptr<Lane>> lanes_;
  std::mutex readers_mutex_;
  std::map<std::string, std::unique_ptr<Connection>> readers_;
  std::mutex shared_mutex_;
  std::vector<std::unique_ptr<Connection>> shared_;
  std::atomic<bool> closed_{false};
  std::atomic<std::int64_t> last_failure_log_{0};
  std::mutex refresh_mutex_;
  std::condition_variable refresh_cv_;
  std::thread refresher_;  // last: it reads the members above
};

}  // namespace

std::unique_ptr<Queue> makeRedisQueue(const RedisOptions& options, const std::vector<std::string>& pipelines) {
  return std::make_unique<RedisQueue>(options, pipelines);
}

}  // namespace eventflow::queue
