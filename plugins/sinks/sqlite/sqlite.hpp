#pragma once

#include <memory>
#include <span>
#include <string>
#include <vector>

#include <eventflow/plugin.hpp>

#include "base/sqlite_busy.hpp"

namespace Poco::Data {
class Session;
}

namespace eventflow::plugins {

/// Writes events as rows of a processed_events-shaped table in the SQLite
/// database named by the host's store.url. One transaction per write();
/// INSERT OR IGNORE on event_id, so a redelivered event never adds a row.
/// synchronous=NORMAL: the host's commit of the events' outcome fsyncs
/// the rows (see the constructor).
class SqliteSink final : public Sink {
 public:
  SqliteSink(const nlohmann::json& config, Context& context);
  ~SqliteSink() override;
  std::vector<Result> write(std::span<Event* const> events) override;

 private:
  std::string path_;
  std::string insert_sql_;
  sqlite::BusyWait busy_;  // before the session: it outlives the connection
  std::unique_ptr<Poco::Data::Session> session_;
};

}  // namespace eventflow::plugins
