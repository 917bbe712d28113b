#pragma once
// The lookup enricher's table: parsed from a CSV or JSON file into one block
// of text plus offsets, and shared by every instance that reads the same file
// the same way, which reloads it when the file changes.

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <eventflow/plugin.hpp>

namespace eventflow::plugins::lookup {

enum class Format : std::uint8_t { csv, json };

/// What to read from a file: the key column and the value columns, in order.
struct TableSpec {
  std::string path;  ///< absolute
  Format format = Format::csv;
  std::string key_column;
  std::vector<std::string> fields;
};

/// An immutable table: for each row its key and one cell per field. CSV
/// cells are text; JSON cells are the JSON text of the value, empty when the
/// record has no such field.
///
/// Memory: the key and the selected cells' bytes once, 4 bytes per cell for
/// its offset and 4 per row for the sorted index, so a 1-million-row file with
/// two fields costs its selected bytes plus 16 MB (docs/benchmarks.md has the
/// measurement). A hash map would cost some 60 bytes more per row for a
/// lookup that is faster by only a few hundred nanoseconds.
class Table {
 public:
  /// Parses `bytes`; throws std::runtime_error naming the line or key at fault.
  static Table parse(const TableSpec& spec, std::string_view bytes);

  std::size_t rows() const { return order_.size(); }
  /// Index of the row whose key is `key`, if any.
  std::optional<std::size_t> find(std::string_view key) const;
  /// Field `field` (index into TableSpec::fields) of row `row` as JSON; null
  /// when a JSON record lacks the field.
  nlohmann::json value(std::size_t row, std::size_t field) const;

 private:
  std::string_view cell(std::size_t row, std::size_t column) const;
  void addCell(std::string_view bytes);

  bool json_cells_ = false;
  std::size_t columns_ = 1;  // the key plus the fields
  std::string text_;
  std::vector<std::uint32_t> starts_;  // columns_ per row, then one past the last cell
  std::vector<std::uint32_t> order_;   // rows sorted by key
};

/// Identity of one version of a file: a rename into place changes the inode,
/// a rewrite in place the size or the modification time.
struct FileVersion {
  dev_t device = 0;
  ino_t inode = 0;
  off_t size = 0;
  std::int64_t mtime_ns = 0;
  bool operator==(const FileVersion&) const = default;
};

/// The table of one file shared by all instances (and so all worker threads)
/// that read it with the same spec. Readers take a snapshot; a reload swaps
/// in a new table only once the new file parsed completely, so a broken or
/// half-written file never replaces a good table.
class SharedTable {
 public:
  /// The shared table for `spec`, loading the file when no instance holds
  /// one; throws std::runtime_error when that first load fails.
  static std::shared_ptr<SharedTable> get(const TableSpec& spec);

  /// Re-reads the file when it changed since the last look, at most once per
  /// `kCheckInterval` over all threads; a thread that finds another one
  /// reloading goes on with the current table. Logs through `context`.
  void poll(Context& context);
  std::uint64_t generation() const { return generation_.load(std::memory_order_acquire); }
  std::shared_ptr<const Table> snapshot() const;
  const TableSpec& spec() const { return spec_; }

  /// Checking costs one stat(2), a few microseconds; once a second is cheap
  /// at any event rate and soon enough for reference data.
  static constexpr std::chrono::milliseconds kCheckInterval{1000};

  explicit SharedTable(TableSpec spec);

 private:
  TableSpec spec_;
  mutable std::mutex snapshot_mutex_;
  std::shared_ptr<const Table> table_;
  std::atomic<std::uint64_t> generation_{0};
  std::atomic<std::int64_t> next_check_ns_{0};
  std::mutex reload_mutex_;
  FileVersion loaded_;
  std::optional<FileVersion> refused_;  // a broken version, logged once
};

}  // namespace eventflow::plugins::lookup
