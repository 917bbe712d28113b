#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <eventflow/plugin.hpp>

#include "pg/connection.hpp"

namespace eventflow::plugins {

struct ProcessedRow;

/// Writes events as rows of a processed_events-shaped PostgreSQL table over a
/// libpq connection of its own (config url, else the host's store.url).
/// One transaction per write() (concurrent write()s of instances of one url and
/// table share one, see Group), batch_size rows per INSERT, ON CONFLICT
/// (event_id) DO NOTHING so a redelivered event never adds a row. A call of
/// pg::kCopyFromRows (32) rows or more with distinct ids first goes as one COPY, which is all or
/// nothing: when it fails for a row's sake (an id already stored, a refused
/// value) the call takes the INSERT path instead. A row the server refuses
/// for its values (SQLSTATE class 22 or 23) is rejected alone; any other
/// failure is a retry of every event in the call.
class PostgresSink final : public Sink {
 public:
  PostgresSink(const nlohmann::json& config, Context& context);
  ~PostgresSink() override;
  std::vector<Result> write(std::span<Event* const> events) override;

 private:
  class Group;
  std::vector<Result> writeRows(std::vector<ProcessedRow>& rows);
  std::optional<std::vector<Result>> copyAll(const std::string& data, std::size_t count);
  std::vector<Result> insertAll(const std::vector<std::string>& rows);
  std::vector<Result> insertAlone(const std::vector<std::string>& rows);
  std::vector<Result> insertRowByRow(const std::vector<std::string>& rows, std::size_t refused_first);
  std::optional<std::string> begin();
  std::vector<Result> retryAll(std::size_t count, const std::string& message) const;

  Context& context_;
  std::string table_ = "processed_events";
  std::size_t batch_size_ = 500;
  std::string insert_sql_;
  std::string copy_sql_;
  pg::Conn conn_;
  int prepared_session_ = 0;  // backend pid of the session insert_sql_ is prepared in
  std::shared_ptr<Group> group_;  // the instances writing the same table
};

}  // namespace eventflow::plugins
