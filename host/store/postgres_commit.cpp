// raw_events' writes on PostgreSQL: a group commit's inserts (COPY, column
// arrays or a JSON record set, whichever fits the batch) and the workers'
// state changes with their DLQ rows.

#include "store/postgres_commit.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <map>
#include <optional>
#include <set>
#include <string_view>
#include <unordered_set>

#include <nlohmann/json.hpp>

#include "base/utf8.hpp"
#include "pg/binary.hpp"
#include "store/queries.hpp"

namespace eventflow::store::postgres {
namespace {

// The id as PostgreSQL's uuid type prints it: isUuid takes either case.
std::string lowercase(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string quote(const std::string& s) { return nlohmann::json(s).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace); }

bool distinctIds(std::span<const RawEvent> inserts) {
  if (inserts.size() < 2) return true;
  std::unordered_set<std::string> seen;
  seen.reserve(inserts.size());
  for (const auto& e : inserts)
    if (!seen.insert(lowercase(e.id)).second) return false;
  return true;
}

Error rollback(pg::Connection& conn, Error e) {
  (void)conn.exec("ROLLBACK");
  return e;
}

// The fast path for a batch of new ids: COPY skips the JSON parameter and
// the ON CONFLICT probe per row. It is all or nothing, so false (nothing
// copied) when an id is stored already or the batch cannot go this way.
Expected<bool> copyRows(pg::Connection& conn, std::span<const RawEvent> inserts) {
  if (!distinctIds(inserts)) return false;  // a repeated id's second row needs the INSERT path's answer
  // COPY's binary format: PostgreSQL reads uuids and times without parsing
  // them and text without unescaping it.
  pg::BinaryWriter data;
  data.reserve(inserts.size() * 320 + 32);
  pg::copyHeader(data);
  for (const auto& e : inserts) {
    char id[16];
    if (!pg::uuidBytes(e.id, id)) return false;
    for (const auto& text : {e.type, e.pipeline, e.payload, e.sha256, e.correlation_id})
      if (!utf8::valid(text)) return false;  // PostgreSQL would refuse the whole COPY
    data.put(std::int16_t{9});
    data.value({id, sizeof id});
    data.value(e.type);
    data.value(e.pipeline);
    data.put(static_cast<std::uint32_t>(e.payload.size() + 1));  // jsonb: a version byte, then the text
    data.raw("\x01");
    data.raw(e.payload);
    data.value(e.sha256);
    if (e.correlation_id.empty()) data.null();
    else data.value(e.correlation_id);
    data.number(pg::postgresMicros(e.received_at));
    data.value(toString(State::queued));
    data.number(std::int32_t{0});  // attempts
  }
  pg::copyTrailer(data);
  return conn.copy("COPY raw_events (event_id, event_type, pipeline, payload, payload_sha256, correlation_id, "
                     "received_at, state, attempts) FROM STDIN (FORMAT binary)",  // updated_at: DEFAULT now()
                     data.take());
}

// The rows as seven array parameters in PostgreSQL's binary format, one
// per column. Arrays are read with less work than a JSON record set
// (-7% of PostgreSQL's CPU on single posts), and binary ones without
// parsing or escaping text: array_in was PostgreSQL's costliest function
// on single posts, the text arrays' escaping the committer thread's.
// Nothing when a text is not valid UTF-8 or holds a NUL, which PostgreSQL
// would refuse for the whole statement.
std::optional<std::vector<std::string>> columnArrays(std::span<const RawEvent> inserts) {
  using pg::kUuidOid, pg::kTextOid, pg::kTimestamptzOid;
  std::array<pg::BinaryArray, 7> columns{pg::BinaryArray(kUuidOid, inserts.size()),        pg::BinaryArray(kTextOid, inserts.size()),
                                     pg::BinaryArray(kTextOid, inserts.size()),        pg::BinaryArray(kTextOid, inserts.size()),
                                     pg::BinaryArray(kTextOid, inserts.size()),        pg::BinaryArray(kTextOid, inserts.size()),
                                     pg::BinaryArray(kTimestamptzOid, inserts.size())};
  for (const auto& e : inserts) {
    char id[16];
    if (!pg::uuidBytes(e.id, id)) return std::nullopt;
    columns[0].add({id, sizeof id});
    const std::array<std::string_view, 5> texts{e.type, e.pipeline, e.payload, e.sha256, e.correlation_id};
    for (std::size_t k = 0; k < texts.size(); ++k) {
      if (!utf8::valid(texts[k])) return std::nullopt;
      columns[k + 1].add(texts[k]);
    }
    columns[6].number(pg::postgresMicros(e.received_at));
  }
  std::vector<std::string> out;
  out.reserve(columns.size());
  for (auto& c : columns) out.push_back(c.take());
  return out;
}

// A group commit's rows from the seven column arrays of columnArrays;
// `answer_conflicts`: ON CONFLICT DO NOTHING, returning the ids inserted.
const std::string& arraysInsert(bool answer_conflicts) {
  static const std::string kPlain =
      "INSERT INTO raw_events (event_id, event_type, pipeline, payload, payload_sha256, correlation_id, "
      "received_at, state, attempts, updated_at) SELECT event_id, event_type, pipeline, payload::jsonb, sha, "
      "NULLIF(cid, ''), received_at, " + sql(State::queued) + ", 0, now() FROM unnest($1::uuid[], $2::text[], "
      "$3::text[], $4::text[], $5::text[], $6::text[], $7::timestamptz[]) AS x(event_id, event_type, pipeline, "
      "payload, sha, cid, received_at)";
  static const std::string kAnswering = kPlain + " ON CONFLICT (event_id) DO NOTHING RETURNING event_id";
  return answer_conflicts ? kAnswering : kPlain;
}

// Fresh ids are the rule: inserted without ON CONFLICT, whose probe of the
// key before each row was a tenth of PostgreSQL's CPU on single posts.
// False, with nothing inserted, when a row repeats an id (a client's
// retry): insertRows then answers each row.
Expected<bool> insertNew(pg::Connection& conn, std::span<const RawEvent> inserts) {
  if (!distinctIds(inserts)) return false;
  auto columns = columnArrays(inserts);
  if (!columns) return false;
  return conn.preparedInsert("insert_raw_new", arraysInsert(false), *columns, true);
}

Expected<pg::Result> insertStatement(pg::Connection& conn, std::span<const RawEvent> inserts) {
  if (auto columns = columnArrays(inserts))
    return conn.prepared("insert_raw_arrays", arraysInsert(true), *columns, true);
  // The payload is already JSON text, so the parameter is assembled, not re-serialised.
  std::string rows = "[";
  for (const auto& e : inserts) {
    if (rows.size() > 1) rows += ',';
    rows += "{\"event_id\":" + quote(e.id) + ",\"event_type\":" + quote(e.type) + ",\"pipeline\":" + quote(e.pipeline) +
            ",\"payload\":" + e.payload + ",\"payload_sha256\":" + quote(e.sha256) +
            ",\"correlation_id\":" + quote(e.correlation_id) + ",\"received_at\":" + quote(formatRfc3339(e.received_at)) + "}";
  }
  rows += "]";
  static const std::string kInsert =
      "INSERT INTO raw_events (event_id, event_type, pipeline, payload, payload_sha256, correlation_id, received_at, "
      "state, attempts, updated_at) SELECT event_id, event_type, pipeline, payload, payload_sha256, NULLIF(correlation_id, ''), "
      "received_at, " + sql(State::queued) + ", 0, now() FROM json_to_recordset($1::json) AS x(event_id uuid, event_type text, "
      "pipeline text, payload jsonb, payload_sha256 text, correlation_id text, received_at timestamptz) "
      "ON CONFLICT (event_id) DO NOTHING RETURNING event_id";
  return conn.prepared("insert_raw", kInsert, {rows});
}

Expected<std::vector<InsertStatus>> insertRows(pg::Connection& conn, std::span<const RawEvent> inserts) {
  auto r = insertStatement(conn, inserts);
  if (!r) return r.error();
  std::set<std::string> fresh;  // lowercase, as is every id compared with these answers
  for (int i = 0; i < PQntuples(r->get()); ++i) fresh.insert(pg::text(*r, i, 0));
  std::vector<InsertStatus> statuses(inserts.size(), InsertStatus::inserted);
  std::vector<std::size_t> others;
  std::set<std::string> claimed;  // an id twice in one batch: only its first row was inserted
  for (std::size_t i = 0; i < inserts.size(); ++i) {
    const auto id = lowercase(inserts[i].id);
    if (fresh.count(id) && claimed.insert(id).second) continue;
    others.push_back(i);
  }
  if (others.empty()) return statuses;
  std::string ids = "{";
  for (std::size_t i : others) ids += (ids.size() > 1 ? "," : "") + inserts[i].id;
  ids += "}";
  auto existing = conn.exec("SELECT event_id, payload_sha256 FROM raw_events WHERE event_id = ANY($1::uuid[])", {ids});
  if (!existing) return existing.error();
  std::map<std::string, std::string> sha;
  for (int i = 0; i < PQntuples(existing->get()); ++i) sha[pg::text(*existing, i, 0)] = pg::text(*existing, i, 1);
  for (std::size_t i : others)
    statuses[i] = sha[lowercase(inserts[i].id)] == inserts[i].sha256 ? InsertStatus::duplicate : InsertStatus::conflict;
  return statuses;
}

// A commit's state changes as nine arrays in PostgreSQL's binary format, one
// per column; nothing when an id is not a UUID or a text would be refused
// (transitionsJson then carries them, and PostgreSQL names the problem).
std::optional<std::vector<std::string>> transitionArrays(std::span<const Transition> transitions) {
  using pg::kUuidOid, pg::kTextOid, pg::kInt4Oid, pg::kInt8Oid;
  const std::size_t n = transitions.size();
  pg::BinaryArray ids(kUuidOid, n), attempts(kInt4Oid, n), micros(kInt8Oid, n);
  std::array<pg::BinaryArray, 6> texts{pg::BinaryArray(kTextOid, n), pg::BinaryArray(kTextOid, n),
                                       pg::BinaryArray(kTextOid, n), pg::BinaryArray(kTextOid, n),
                                       pg::BinaryArray(kTextOid, n), pg::BinaryArray(kTextOid, n)};
  for (const auto& t : transitions) {
    char id[16];
    if (!pg::uuidBytes(t.id, id)) return std::nullopt;
    ids.add({id, sizeof id});
    attempts.number(static_cast<std::int32_t>(t.attempts));
    micros.number(static_cast<std::int64_t>(t.processing_us));
    const std::string last_error = lastError(t);
    const std::array<std::string_view, 6> values{toString(t.kind), last_error, t.error_type, t.error_message, t.stage, t.plugin};
    for (std::size_t k = 0; k < values.size(); ++k) {
      if (!utf8::valid(values[k])) return std::nullopt;
      texts[k].add(values[k]);
    }
  }
  std::vector<std::string> out{ids.take(), attempts.take(), micros.take()};
  for (auto& t : texts) out.push_back(t.take());
  return out;
}

// Every state change of a commit as the CTEs x, upd and dlq of one statement,
// so one round trip and no BEGIN/COMMIT whatever the mix of done, retrying
// and dead. `source` yields x(event_id, attempts, us, state, last_error,
// error_type, error_message, stage, plugin). A terminal event never changes
// state again (G2, G3); only rows that really turned dead reach the DLQ, and
// only they carry their payload out of the UPDATE.
std::string transitionCtes(const std::string& source, const std::string& ids) {
  return "x AS (" + source + "), "
         "upd AS (UPDATE raw_events r SET state = x.state, attempts = x.attempts, updated_at = now(), "
         "last_error = NULLIF(x.last_error, ''), processing_us = CASE WHEN x.state = " + sql(State::done) +
         " THEN NULLIF(x.us, -1) ELSE COALESCE(NULLIF(x.us, -1), r.processing_us) END "
         "FROM x WHERE r.event_id = x.event_id AND r.event_id = ANY(" + ids + ") AND r.state NOT IN " +
         terminalStatesSql() + " RETURNING r.event_id, r.pipeline, CASE WHEN x.state = " + sql(State::dead) +
         " THEN r.payload END AS payload, x.state, x.error_type, x.error_message, x.stage, x.plugin, x.attempts), "
         "dlq AS (INSERT INTO failed_events (event_id, pipeline, payload, error_type, error_message, stage, plugin, "
         "attempts, first_failed_at, failed_at, replay_count) SELECT event_id, pipeline, payload, error_type, "
         "error_message, NULLIF(stage, ''), NULLIF(plugin, ''), attempts, now(), now(), 0 FROM upd WHERE state = " +
         sql(State::dead) + " ON CONFLICT (event_id) DO UPDATE SET error_type = EXCLUDED.error_type, "
         "error_message = EXCLUDED.error_message, stage = EXCLUDED.stage, plugin = EXCLUDED.plugin, "
         "attempts = EXCLUDED.attempts, failed_at = now())";
}

// transitionArrays' nine parameters from $first on.
std::string transitionArraysSource(int first) {
  std::string params[9];
  for (int k = 0; k < 9; ++k) params[k] = "$" + std::to_string(first + k);
  return transitionCtes("SELECT * FROM unnest(" + params[0] + "::uuid[], " + params[1] + "::integer[], " + params[2] +
                            "::bigint[], " + params[3] + "::text[], " + params[4] + "::text[], " + params[5] +
                            "::text[], " + params[6] + "::text[], " + params[7] + "::text[], " + params[8] +
                            "::text[]) AS x(event_id, attempts, us, state, last_error, error_type, error_message, "
                            "stage, plugin)",
                        params[0] + "::uuid[]");
}

Expected<void> applyTransitions(pg::Connection& conn, std::span<const Transition> transitions) {
  // Prepared once per session: parsing and planning these statements each
  // time was most of PostgreSQL's CPU under single posts (issue 13). The
  // `event_id = ANY($1)` restriction and the session's settings
  // (kCommitterSession) keep its cached plan to the key, hashed.
  if (auto arrays = transitionArrays(transitions)) {
    auto r = conn.prepared("transitions", transitionsStatement(), *arrays, true);
    if (!r) return r.error();
    return {};
  }
  nlohmann::json rows = nlohmann::json::array();
  for (const auto& t : transitions)
    rows.push_back({{"event_id", t.id}, {"state", toString(t.kind)}, {"attempts", t.attempts},
                    {"last_error", lastError(t)}, {"error_type", t.error_type}, {"error_message", t.error_message},
                    {"stage", t.stage}, {"plugin", t.plugin}, {"us", t.processing_us}});
  static const std::string kJson = "WITH " + transitionCtes(
      "SELECT * FROM json_to_recordset($1::json) AS x(event_id uuid, attempts integer, us bigint, state text, "
      "last_error text, error_type text, error_message text, stage text, plugin text)",
      "ARRAY(SELECT (e->>'event_id')::uuid FROM json_array_elements($1::json) e)") + " SELECT 1";
  auto r = conn.exec(kJson, {rows.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)});
  if (!r) return r.error();
  return {};
}

// role all: new rows and state changes in one statement, one round trip
// instead of BEGIN, INSERT, UPDATE and COMMIT. Fresh ids only, as
// insertNew: false, with nothing committed, when a row repeats an id or
// the values cannot go as arrays.
Expected<bool> insertAndApply(pg::Connection& conn, std::span<const RawEvent> inserts,
                              std::span<const Transition> transitions) {
  if (!distinctIds(inserts)) return false;
  auto columns = columnArrays(inserts);
  auto changes = transitionArrays(transitions);
  if (!columns || !changes) return false;
  columns->insert(columns->end(), std::make_move_iterator(changes->begin()), std::make_move_iterator(changes->end()));
  static const std::string kBoth = "WITH ins AS (" + arraysInsert(false) + "), " + transitionArraysSource(8) + " SELECT 1";
  return conn.preparedInsert("insert_and_transitions", kBoth, *columns, true);
}

}  // namespace

const std::string& transitionsStatement() {
  static const std::string kArrays = "WITH " + transitionArraysSource(1) + " SELECT 1";
  return kArrays;
}

Expected<std::vector<InsertStatus>> commitOn(pg::Connection& conn, std::span<const RawEvent> inserts,
                                             std::span<const Transition> transitions) {
  // One statement is its own transaction: the api's group commits (inserts
  // only) and the workers' (state changes only) need no BEGIN and COMMIT.
  if (transitions.empty()) {
    if (inserts.empty()) return std::vector<InsertStatus>{};
    // COPY takes two round trips (the server answers the COPY command
    // before the data goes), the INSERT one: small group commits, where
    // the round trip is the cost, insert.
    if (inserts.size() < pg::kCopyFromRows) {
      auto plain = insertNew(conn, inserts);
      if (!plain) return plain.error();
      if (*plain) return std::vector<InsertStatus>(inserts.size(), InsertStatus::inserted);
      return insertRows(conn, inserts);
    }
    auto copied = copyRows(conn, inserts);
    if (!copied) return copied.error();
    if (*copied) return std::vector<InsertStatus>(inserts.size(), InsertStatus::inserted);
    return insertRows(conn, inserts);
  }
  if (inserts.empty()) {
    if (auto applied = applyTransitions(conn, transitions); !applied) return applied.error();
    return std::vector<InsertStatus>{};
  }
  auto both = insertAndApply(conn, inserts, transitions);
  if (!both) return both.error();
  if (*both) return std::vector<InsertStatus>(inserts.size(), InsertStatus::inserted);
  if (auto begun = conn.exec("BEGIN"); !begun) return begun.error();
  std::vector<InsertStatus> statuses;
  if (!inserts.empty()) {
    auto inserted = insertRows(conn, inserts);
    if (!inserted) return rollback(conn, inserted.error());
    statuses = std::move(*inserted);
  }
  if (!transitions.empty()) {
    if (auto applied = applyTransitions(conn, transitions); !applied) return rollback(conn, applied.error());
  }
  if (auto done = conn.exec("COMMIT"); !done) return done.error();
  return statuses;
}

}  // namespace eventflow::store::postgres
