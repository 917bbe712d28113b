// Redis Streams queue. Per pipeline: stream <prefix><pipeline> and consumer
// group "eventflow". Each worker thread reads as its own consumer (host:pid:n)
// on its own connection, since XREADGROUP BLOCK holds it.
//
// RESP is encoded and parsed here rather than with Poco::Redis's types, a
// deliberate departure: profiled at 18k events/s, the ingest publisher spent
// ~7 µs of CPU per event (0.13 cores) building a Poco::Redis::Array of ~13
// heap-allocated BulkStrings per XADD, toString()-ing it and reading each
// reply through createRedisType and an istream, and the workers paid a
// dynamic_cast per field decoding XREADGROUP replies. Here commands are
// encoded straight into one buffer and replies parsed from a receive buffer
// into plain values whose strings move on into the Messages.

#include <Poco/Exception.h>
#include <Poco/Net/NetException.h>
#include <Poco/Net/SocketAddress.h>
#include <Poco/Net/StreamSocket.h>
#include <Poco/Redis/Exception.h>
#include <Poco/URI.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <climits>
#include <condition_variable>
#include <cstring>
#include <functional>
#include <optional>
#include <string_view>
#include <thread>
#include <unordered_map>

#include "base/ids.hpp"
#include "base/threads.hpp"
#include "base/log.hpp"
#include "queue/queue.hpp"
#include "queue/resp.hpp"

namespace eventflow::queue {
namespace {

using Clock = std::chrono::steady_clock;

constexpr const char* kGroup = "eventflow";
// An entry delivered no more than this before its consumer's last
// interaction still counts as in hand there: Redis stamps both in
// milliseconds, and a blocked read may stamp them apart.
constexpr std::chrono::milliseconds kInHandSlack{5};

// One command as RESP: its arguments are encoded as they are added, and the
// *N header, once N is known, when it is appended to the output.
class Command {
 public:
  Command() = default;
  Command(std::initializer_list<std::string_view> args) {
    for (auto a : args) *this << a;
  }

  Command& operator<<(std::string_view arg) {
    char digits[24];
    const auto n = std::to_chars(digits, digits + sizeof digits, arg.size()).ptr;
    args_ += '$';
    args_.append(digits, n);
    args_ += "\r\n";
    args_ += arg;
    args_ += "\r\n";
    ++count_;
    return *this;
  }

  Command& operator<<(long long number) {
    char digits[24];
    return *this << std::string_view(digits, std::to_chars(digits, digits + sizeof digits, number).ptr - digits);
  }

  void appendTo(std::string& out) const {
    char digits[24];
    out += '*';
    out.append(digits, std::to_chars(digits, digits + sizeof digits, count_).ptr);
    out += "\r\n";
    out += args_;
  }

  // Keeps the buffer, so one Command can encode many commands in turn.
  void clear() {
    args_.clear();
    count_ = 0;
  }

 private:
  std::string args_;
  std::size_t count_ = 0;
};

// The value as a string, moved out of the reply.
std::string bulk(Reply&& value) {
  if (value.kind == '$' || value.kind == '+') return std::move(value.text);
  if (value.kind == ':') return std::to_string(value.number);
  return {};
}

long long integer(const Reply& value) {
  if (value.kind == ':') return value.number;
  if (value.kind == '$' || value.kind == '+') return std::atoll(value.text.c_str());
  return 0;
}

Reply* array(Reply& value) { return value.kind == '*' && !value.null ? &value : nullptr; }

// [id, [field, value, ...]] → Message, its strings moved out of the reply;
// false when the entry was deleted.
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
  }
  m.pipeline = pipeline;
  return !m.id.empty();
}

// One connection speaking RESP2 over a plain StreamSocket with TCP_NODELAY
// (with Nagle on, a pipelined call, several writes then a read, stalls ~40 ms
// on delayed ACK).
class Connection {
 public:
  Connection(std::string host, int port, std::chrono::milliseconds send_timeout)
      : host_(std::move(host)), port_(port), send_timeout_(send_timeout) {}

  /// Writes `wire`, `commands` encoded commands, in one send and reads one
  /// reply each. Throws Poco::Exception when the connection fails or Redis
  /// breaks the protocol; error replies are returned.
  std::vector<Reply> send(std::string_view wire, std::size_t commands, std::chrono::milliseconds read_timeout) {
    open();
    const Poco::Timespan timeout((read_timeout + std::chrono::seconds(5)).count() * 1000);
    if (timeout != receive_timeout_) {
      socket_.setReceiveTimeout(timeout);
      receive_timeout_ = timeout;
    }
    write(wire);
    if (reader_.drained()) reader_.release();
    std::vector<Reply> replies;
    replies.reserve(commands);
    for (std::size_t i = 0; i < commands; ++i) replies.push_back(reader_.read());
    return replies;
  }

  /// One command; an error reply is thrown as RedisException.
  Reply call(const Command& command, std::chrono::milliseconds read_timeout = std::chrono::seconds(1)) {
    out_.clear();
    command.appendTo(out_);
    auto reply = std::move(send(out_, 1, read_timeout).front());
    if (reply.isError()) throw Poco::Redis::RedisException(reply.text);
    return reply;
  }

  void reset() {
    if (open_) socket_.close();
    open_ = false;
    reader_.clear();
    prepared = false;
  }

  bool prepared = false;  // the consumer group exists as far as this connection knows

 private:

  void open() {
    if (open_) return;
    socket_ = Poco::Net::StreamSocket();
    socket_.connect(Poco::Net::SocketAddress(host_, static_cast<Poco::UInt16>(port_)), Poco::Timespan(2, 0));
    socket_.setNoDelay(true);
    // A Redis that stops reading must not hold a publisher or a worker
    // forever: the write fails, the connection is dropped, the relay repairs.
    socket_.setSendTimeout(Poco::Timespan(send_timeout_.count() * 1000));
    receive_timeout_ = Poco::Timespan();
    reader_.clear();
    open_ = true;
  }

  void write(std::string_view wire) {
    while (!wire.empty()) {
      const int n = socket_.sendBytes(wire.data(), static_cast<int>(std::min<std::size_t>(wire.size(), INT_MAX)),
                                      MSG_NOSIGNAL);
      if (n <= 0) throw Poco::IOException("Redis connection: nothing written");
      wire.remove_prefix(static_cast<std::size_t>(n));
    }
  }

  std::string host_;
  int port_;
  std::chrono::milliseconds send_timeout_;
  Poco::Net::StreamSocket socket_;
  Poco::Timespan receive_timeout_;
  std::string out_;  // call()'s encoded command, kept for its capacity
  RespReader reader_{[this](char* into, std::size_t room) {
    return socket_.receiveBytes(into, static_cast<int>(std::min<std::size_t>(room, INT_MAX)));
  }};
  bool open_ = false;
};

class RedisQueue final : public Queue {
 public:
  RedisQueue(const RedisOptions& options, const std::vector<std::string>& pipelines)
      : options_(options), consumer_prefix_(consumerPrefix()) {
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
    std::string wire;
    const std::size_t n = encodeXadds(wire, pipeline, messages);
    return sendXadds(wire, n);
  }

  // Every pipeline's XADDs in one write: one round trip for all of them.
  Expected<void> publishAll(std::map<std::string, std::vector<Message>> batches) override {
    std::string wire;
    std::size_t n = 0;
    for (const auto& [pipeline, messages] : batches) n += encodeXadds(wire, pipeline, messages);
    return sendXadds(wire, n);
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

  void ack(const std::string& pipeline, const std::vector<std::string>& tokens) override {
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

  void redeliver(const std::string& pipeline, Message message) override {
    Lane* lane = laneOf(pipeline);
    if (!lane) return;
    std::lock_guard lock(lane->mutex);
    if (message.token == lane->suspect) lane->suspect.clear();  // it ran to a retry: it did not crash anything
    lane->ready.push_back(std::move(message));
  }

  std::size_t depth(const std::string& pipeline) override {
    Lane* lane = laneOf(pipeline);
    if (!lane) return 0;
    // Ingest asks on every request, on the HTTP event loop: it reads what the
    // refresher thread last counted and never waits on Redis.
    lane->wanted = true;
    std::lock_guard lock(lane->mutex);
    return lane->depth;  // retries in `ready` are unacknowledged entries, which XLEN counts already
  }

  std::size_t pending(const std::string& pipeline) override {
    Lane* lane = laneOf(pipeline);
    if (!lane) return 0;
    lane->wanted = true;
    std::lock_guard lock(lane->mutex);
    return lane->pending;
  }

  Expected<void> ping() override {
    return withShared([&](Connection& c) -> Expected<void> {
      c.call(Command{"PING"});
      return {};
    });
  }

  void handBack(const std::string& pipeline, std::vector<Message> messages) override {
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

  void close() override {
    if (closed_) return;
    // Retries whose backoff passed but which no worker took: handed back.
    for (auto& [pipeline, lane] : lanes_) {
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

  ~RedisQueue() override { close(); }

 private:
  struct Lane {
    std::mutex mutex;
    std::deque<Message> ready;  // retries whose backoff has passed
    std::size_t depth = 0;  // XLEN as the refresher last read it
    std::size_t pending = 0;  // XPENDING's count as the refresher last read it
    std::atomic<bool> wanted{false};  // asked for since the last refresh
    std::atomic<std::int64_t> last_claim{0};
    std::deque<std::string> owned;  // stopped consumers' entries that were in hand, to run one at a time
    std::string claim_cursor = "-";  // where the walk of the pending list goes on
    std::string suspect;  // the claimed entry running now, until its ack: one at a time
  };

  std::string stream(const std::string& pipeline) const { return options_.prefix + pipeline; }

  // host:pid: for the process's queue. A second queue in one process (tests
  // play a crashed process and its successor so) gets host:pid/2:, since
  // claims tell a stopped consumer from a live one by its name.
  static std::string consumerPrefix() {
    static std::atomic<int> instances{0};
    const int n = ++instances;
    return hostName() + ":" + std::to_string(::getpid()) + (n > 1 ? "/" + std::to_string(n) : "") + ":";
  }

  // After a clean stop this process's consumers that hold nothing are
  // deleted: every restart makes new names, and claims read the whole
  // consumer list. One that still holds entries (their commit failed) stays,
  // so that they are claimed.
  void forgetConsumers() {
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
  std::size_t encodeXadds(std::string& wire, const std::string& pipeline, const std::vector<Message>& messages) const {
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
      if (m.not_before != SystemTime{})
        xadd << "due"
             << static_cast<long long>(
                    std::chrono::duration_cast<std::chrono::milliseconds>(m.not_before.time_since_epoch()).count());
      xadd.appendTo(wire);
    }
    return messages.size();
  }

  Expected<void> sendXadds(const std::string& wire, std::size_t commands) {
    if (commands == 0) return {};
    return withShared([&](Connection& c) -> Expected<void> {
      for (const auto& r : c.send(wire, commands, std::chrono::seconds(5)))
        if (r.isError()) return makeError("XADD: " + r.text);
      return {};
    });
  }

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

  Lane* laneOf(const std::string& pipeline) {
    auto it = lanes_.find(pipeline);
    return it == lanes_.end() ? nullptr : it->second.get();
  }

  Connection& reader(const std::string& pipeline, unsigned worker) {
    std::lock_guard lock(readers_mutex_);
    auto& c = readers_[pipeline + "/" + std::to_string(worker)];
    if (!c) c = std::make_unique<Connection>(host_, port_, options_.send_timeout);
    return *c;
  }

  void ensureGroup(Connection& conn, const std::string& pipeline, std::chrono::milliseconds wait) {
    if (conn.prepared) return;
    try {
      conn.call(Command{"XGROUP", "CREATE", stream(pipeline), kGroup, "0", "MKSTREAM"}, wait);
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

  // Before a batch read from `ready` runs, it is claimed by this consumer
  // without counting a delivery: its delivery time and this consumer's last
  // interaction then say it is in hand (see claim()).
  void markStarted(Connection& conn, const std::string& pipeline, const std::string& consumer,
                   const std::vector<Message>& messages) {
    Command cmd;
    cmd << "XCLAIM" << stream(pipeline) << kGroup << consumer << "0";
    for (const auto& m : messages) cmd << m.token;
    cmd << "JUSTID";
    try {
      conn.call(cmd);
    } catch (const Poco::Exception& e) {
      conn.reset();
      noteFailure("redis claim failed", e.displayText());
    }
  }

  // Takes over entries idle for claim_idle from consumers that stopped
  // without handing them back (a crash, a kill). Which of them were in hand
  // at the crash? A worker reads its next batch only once the chain has run
  // over the last one, so an entry delivered before its consumer's last
  // interaction with Redis (XINFO CONSUMERS' idle) had been through the
  // chain: it waited for its commit or a retry timer, and did not crash
  // anything. Those are claimed keeping their delivery count and run in a
  // batch at once (`out`). Only the entries delivered at or after that last
  // interaction, the batch in hand, are suspects: kept in `owned`, each
  // claimed (and counted) only when it runs, alone (deliverOwned), so G5
  // still blames a poison event and never its batch-mates.
  void claim(Connection& conn, const std::string& pipeline, const std::string& consumer, std::size_t max, Lane& lane,
             std::vector<Message>& out) {
    std::string cursor;
    {
      std::lock_guard lock(lane.mutex);
      cursor = lane.claim_cursor;
    }
    const std::string idle = std::to_string(options_.claim_idle.count());
    Reply listed = conn.call(Command{"XPENDING", stream(pipeline), kGroup, "IDLE", idle, cursor, "+",
                                     std::to_string(max)});
    Reply* rows = array(listed);
    struct Row {
      std::string id, consumer;
      long long idle = 0, count = 0;
    };
    std::vector<Row> found;
    if (rows)
      for (auto& r : rows->items) {
        Reply* f = array(r);
        if (!f || f->items.size() < 4) continue;
        found.push_back({bulk(std::move(f->items[0])), bulk(std::move(f->items[1])), integer(f->items[2]),
                         integer(f->items[3])});
      }
    {
      std::lock_guard lock(lane.mutex);
      lane.claim_cursor = found.size() < max ? "-" : "(" + found.back().id;  // "-": the whole list was walked
    }
    const bool walked_all = found.size() < max;
    // This process's own entries (a retry on a long backoff) are not taken from it.
    std::erase_if(found, [&](const Row& r) { return r.consumer.rfind(consumer_prefix_, 0) == 0; });
    if (found.empty()) return;
    std::map<std::string, long long> seen;  // consumer → ms since its last interaction
    Reply consumers = conn.call(Command{"XINFO", "CONSUMERS", stream(pipeline), kGroup});
    if (Reply* list = array(consumers))
      for (auto& c : list->items) {
        Reply* f = array(c);
        if (!f) continue;
        std::string name;
        long long since = -1;
        for (std::size_t i = 0; i + 1 < f->items.size(); i += 2) {
          if (f->items[i].text == "name") name = bulk(std::move(f->items[i + 1]));
          else if (f->items[i].text == "idle") since = integer(f->items[i + 1]);
        }
        if (!name.empty()) seen[name] = since;
      }
    std::map<long long, std::vector<std::string>> innocent;  // by delivery count
    std::size_t suspects = 0, innocents = 0;
    {
      std::lock_guard lock(lane.mutex);
      for (auto& r : found) {
        const auto it = seen.find(r.consumer);
        // Delivered within kInHandSlack of the last interaction, or the
        // consumer is unknown: in hand, as far as anyone can tell.
        if (it == seen.end() || it->second < 0 || r.idle <= it->second + kInHandSlack.count()) {
          // Listed again on each walk until it runs: counted once.
          if (std::find(lane.owned.begin(), lane.owned.end(), r.id) != lane.owned.end() || r.id == lane.suspect) continue;
          lane.owned.push_back(r.id);
          ++suspects;
        } else {
          innocent[std::max(1LL, r.count)].push_back(std::move(r.id));
          ++innocents;
        }
      }
    }
    for (auto& [count, ids] : innocent) {
      Command cmd;
      cmd << "XCLAIM" << stream(pipeline) << kGroup << consumer << idle;
      for (const auto& id : ids) cmd << id;
      cmd << "RETRYCOUNT" << count;
      Reply claimed = conn.call(cmd);
      Reply* entries = array(claimed);
      if (!entries) continue;
      std::vector<std::string> junk;
      for (auto& e : entries->items) {
        Message m;
        if (!decode(e, pipeline, m)) continue;  // acknowledged meanwhile
        if (!isUuid(m.id)) {
          junk.push_back(std::move(m.token));
          continue;
        }
        m.deliveries = static_cast<unsigned>(count);
        out.push_back(std::move(m));
      }
      dropForeign(pipeline, junk);
    }
    // A backlog is taken over at full speed: the next take looks again at once.
    if (innocents > 0 || !walked_all) lane.last_claim = 0;
    if (innocents + suspects == 0) return;
    log::info("claimed entries from stopped consumers",
              {{"pipeline", pipeline}, {"in_batches", std::to_string(innocents)},
               {"one_at_a_time", std::to_string(suspects)}});
  }

  // Hands out one suspect: claims it, which counts the delivery and returns
  // its fields, and reads its exact delivery count.
  //
  // Suspects were in hand when a consumer died, so any of them may be what
  // killed it. They run one at a time (the other worker threads take new
  // entries meanwhile): were two to run at once, the poison one would count a
  // delivery against the innocent one too, and after max_deliveries crashes
  // dead-letter it as poison. The claim asks for claim_idle again, so of two
  // processes claiming one entry only one gets it.
  bool deliverOwned(Connection& conn, const std::string& pipeline, const std::string& consumer, Lane& lane,
                    std::vector<Message>& out) {
    const std::string idle = std::to_string(options_.claim_idle.count());
    for (;;) {
      std::string id;
      {
        std::lock_guard lock(lane.mutex);
        if (lane.owned.empty() || !lane.suspect.empty()) return false;
        id = std::move(lane.owned.front());
        lane.owned.pop_front();
        lane.suspect = id;
      }
      // Released unless the entry is handed out: acked or claimed meanwhile, foreign, or Redis failed.
      struct Release {
        Lane& lane;
        bool keep = false;
        ~Release() {
          if (keep) return;
          std::lock_guard lock(lane.mutex);
          lane.suspect.clear();
        }
      } release{lane};
      Reply entry_reply = conn.call(Command{"XCLAIM", stream(pipeline), kGroup, consumer, idle, id});
      Reply* entries = array(entry_reply);
      Message m;
      if (!entries || entries->items.empty() || !decode(entries->items[0], pipeline, m)) continue;
      if (!isUuid(m.id)) {
        dropForeign(pipeline, {m.token});
        continue;
      }
      Reply count_reply = conn.call(Command{"XPENDING", stream(pipeline), kGroup, id, id, "1"});
      Reply* rows = array(count_reply);
      Reply* row = rows && !rows->items.empty() ? array(rows->items[0]) : nullptr;
      m.deliveries = row && row->items.size() >= 4 ? static_cast<unsigned>(integer(row->items[3])) : 2;
      out.push_back(std::move(m));
      release.keep = true;
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
