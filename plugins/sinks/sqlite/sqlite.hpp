#pragma once

#include <memory>
#include <span>
#include <string>
#include <vector>

#include <eventflow/plugin.hpp>


namespace eventflow::plugins {

/// Writes events as rows of a processed_events-shaped table in the SQLite
/// database named by the host's store.url. The instances of a process share
/// one connection per file, and concurrent write()s one transaction (see
/// Writer); INSERT OR IGNORE on event_id, so a redelivered event never adds
/// a row. synchronous=NORMAL: the host's commit of the events' outcome
/// fsyncs the rows.
class SqliteSink final : public Sink {
 public:
  SqliteSink(const nlohmann::json& config, Context& context);
  ~SqliteSink() override;
  std::vector<Result> write(std::span<Event* const> events) override;

 private:
  class Writer;
  std::string path_;
  std::string insert_sql_;
  std::shared_ptr<Writer> writer_;
};

}  // namespace eventflow::plugins
