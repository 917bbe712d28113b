#include "sqlite.hpp"

#include <chrono>
#include <optional>
#include <stdexcept>
#include <string_view>
#include <utility>

#include <Poco/Data/SQLite/Connector.h>
#include <Poco/Data/SQLite/Utility.h>
#include <Poco/Data/Session.h>
#include <Poco/Data/Statement.h>
#include <Poco/Exception.h>
#include <Poco/Nullable.h>
#include <Poco/Types.h>

#include <eventflow/time.hpp>

#include "base/tables.hpp"
#include "common/processed_row.hpp"

namespace eventflow::plugins {
namespace {

using Poco::Data::Keywords::into;
using Poco::Data::Keywords::now;
using Poco::Data::Keywords::use;

constexpr std::string_view kScheme = "sqlite://";

bool isIdentifier(std::string_view name) {
  const auto alpha = [](char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_'; };
  if (name.empty() || !alpha(name.front())) return false;
  for (const char c : name)
    if (!alpha(c) && !(c >= '0' && c <= '9')) return false;
  return true;
}

// A url named in an error must not leak the password of a postgresql:// url.
std::string redactUrl(const std::string& url) {
  const std::size_t scheme_end = url.find("://");
  if (scheme_end == std::string::npos) return url;
  const std::size_t at = url.find('@', scheme_end + 3);
  const std::size_t colon = url.find(':', scheme_end + 3);
  if (at == std::string::npos || colon == std::string::npos || colon > at) return url;
  return url.substr(0, colon + 1) + "***" + url.substr(at);
}

std::string databasePath(const std::string& url) {
  if (url.empty()) throw std::runtime_error("sqlite: the host setting store.url is empty");
  if (!url.starts_with(kScheme) || url.size() == kScheme.size())
    throw std::invalid_argument("sqlite: store.url '" + redactUrl(url) +
                                "' is not a sqlite:// url (sqlite:///abs/path.db or sqlite://relative.db)");
  return url.substr(kScheme.size());
}

struct Row {
  std::string event_id;
  std::string event_type;
  Poco::Nullable<std::string> user_id;
  Poco::Nullable<std::string> timestamp;
  Poco::Nullable<std::string> properties;
  std::string enriched_data;
  std::string pipeline;
  std::string processed_at;
  Poco::Int64 attempts = 0;
};

Poco::Nullable<std::string> nullable(std::optional<std::string>&& value) {
  if (!value) return {};
  return Poco::Nullable<std::string>(std::move(*value));
}

void fillRow(Row& row, const Event& event) {
  ProcessedRow processed = makeProcessedRow(event);
  row.event_id = std::move(processed.event_id);
  row.event_type = std::move(processed.event_type);
  row.user_id = nullable(std::move(processed.user_id));
  row.timestamp = nullable(std::move(processed.timestamp));
  row.properties = nullable(std::move(processed.properties));
  row.enriched_data = std::move(processed.enriched_data);
  row.pipeline = std::move(processed.pipeline);
  row.attempts = processed.attempts;
}

void rollbackQuietly(Poco::Data::Session& session) noexcept {
  // Only called while another error is already being reported; a failed
  // rollback ends with the connection's next BEGIN or its close anyway.
  try {
    if (session.isTransaction()) session.rollback();
  } catch (...) {
  }
}

}  // namespace

SqliteSink::SqliteSink(const nlohmann::json& config, Context& context) {
  if (!config.is_object()) throw std::invalid_argument("sqlite: config must be an object");
  std::string table = "processed_events";
  if (const auto it = config.find("table"); it != config.end()) {
    if (!it->is_string() || !isIdentifier(it->get_ref<const std::string&>()))
      throw std::invalid_argument("sqlite: table " + it->dump() + " is not an identifier ([A-Za-z_][A-Za-z0-9_]*)");
    table = it->get<std::string>();
  }
  path_ = databasePath(context.setting("store.url"));
  insert_sql_ = "INSERT OR IGNORE INTO " + table +
                " (event_id, event_type, user_id, timestamp, properties, enriched_data, pipeline, processed_at,"
                " attempts) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)";
  // `eventflow validate`: the config is checked; the database stays untouched.
  if (context.setting("validate_only") == "1") return;

  Poco::Data::SQLite::Connector::registerConnector();
  try {
    session_ = std::make_unique<Poco::Data::Session>(Poco::Data::SQLite::Connector::KEY, path_);
    // The host's store and other workers write the same file: wait for their
    // transactions rather than fail at once.
    int busy_timeout_ms = 0;
    *session_ << "PRAGMA busy_timeout=10000", into(busy_timeout_ms), now;
    busy_.install(Poco::Data::SQLite::Utility::dbHandle(*session_));
    // No fsync of our own: the host marks these events done only after
    // write() returns, in a commit of its own (synchronous=FULL) that fsyncs
    // the same WAL file and with it every frame written before, ours too.
    // If power fails first, the events are not done and run again (G3), and
    // INSERT OR IGNORE writes the row again. The WAL keeps the file
    // consistent either way.
    *session_ << "PRAGMA synchronous=NORMAL", now;
    *session_ << tables::processedEventsDdl(tables::Engine::sqlite, table), now;
  } catch (const Poco::Exception& e) {
    throw std::runtime_error("sqlite: cannot prepare table " + table + " in " + path_ + ": " + e.displayText());
  }
}

SqliteSink::~SqliteSink() = default;

std::vector<Result> SqliteSink::write(std::span<Event* const> events) {
  std::string error;
  try {
    Row row;
    Poco::Data::Statement insert(*session_);
    insert << insert_sql_, use(row.event_id), use(row.event_type), use(row.user_id), use(row.timestamp),
        use(row.properties), use(row.enriched_data), use(row.pipeline), use(row.processed_at), use(row.attempts);
    row.processed_at = formatRfc3339(std::chrono::system_clock::now());
    session_->begin();
    for (const Event* event : events) {
      fillRow(row, *event);
      insert.execute();
    }
    session_->commit();
    return std::vector<Result>(events.size(), Result::ok());
  } catch (const Poco::Exception& e) {
    error = e.displayText();
  } catch (const std::exception& e) {
    error = e.what();
  }
  rollbackQuietly(*session_);
  return std::vector<Result>(events.size(), Result::retry("sqlite " + path_ + ": " + error, "sink_unavailable"));
}

}  // namespace eventflow::plugins
