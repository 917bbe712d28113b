// Taking over the entries of consumers that stopped without handing them
// back (a crash, a kill), so that G5 blames a poison event and never its
// batch-mates (see RedisQueue::claim).

#include "queue/redis_queue.hpp"

#include <Poco/Exception.h>

#include <algorithm>

namespace eventflow::queue {

// One worker per pipeline looks for dead consumers' entries at a time, a few
// times per claim_idle.
bool RedisQueue::claimDue(Lane& lane) {
  const auto now = Clock::now().time_since_epoch().count();
  const auto every = std::chrono::duration_cast<Clock::duration>(options_.claim_idle / 4).count();
  auto last = lane.last_claim.load();
  return now - last >= every && lane.last_claim.compare_exchange_strong(last, now);
}

// Before a batch read from `ready` runs, it is claimed by this consumer
// without counting a delivery: its delivery time and this consumer's last
// interaction then say it is in hand (see claim()).
void RedisQueue::markStarted(Connection& conn, const std::string& pipeline, const std::string& consumer,
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
void RedisQueue::claim(Connection& conn, const std::string& pipeline, const std::string& consumer, std::size_t max, Lane& lane,
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
      // Never started, but recovery published its event again at the
      // restart: that copy may have finished it, and retention pruned it.
      m.maybe_settled = true;
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
bool RedisQueue::deliverOwned(Connection& conn, const std::string& pipeline, const std::string& consumer, Lane& lane,
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
    readCrashNote(conn, m);
    out.push_back(std::move(m));
    release.keep = true;
    return true;
  }
}

// The stage and plugin the crash note of a restarted process named for
// this event (noteCrash), for its poison record; the processes that crash
// on it and the one that dead-letters it may differ.
void RedisQueue::readCrashNote(Connection& conn, Message& m) {
  Reply note;
  try {
    note = conn.call(Command{"GET", crashKey(m.id)});
  } catch (const Poco::Exception& e) {
    // The entry is claimed already: it runs, its poison record unnamed.
    conn.reset();
    noteFailure("redis read of a crash note failed", e.displayText());
    return;
  }
  if (note.kind != '$' || note.null) return;
  const auto newline = note.text.find('\n');
  m.crashed_stage = note.text.substr(0, newline);
  if (newline != std::string::npos) m.crashed_plugin = note.text.substr(newline + 1);
}

}  // namespace eventflow::queue
