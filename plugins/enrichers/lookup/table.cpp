#include "table.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>
#include <map>
#include <stdexcept>

namespace eventflow::plugins::lookup {
namespace {

std::runtime_error broken(const TableSpec& spec, const std::string& why) {
  return std::runtime_error("lookup: " + spec.path + ": " + why);
}

// One CSV record (RFC 4180: commas, double quotes doubled inside quoted
// fields, which may hold newlines; LF or CRLF line ends). Returns false at
// the end of the input.
class CsvReader {
 public:
  explicit CsvReader(std::string_view text) : text_(text) {
    if (text_.starts_with("\xEF\xBB\xBF")) pos_ = 3;  // a BOM from spreadsheet exports
  }

  bool next(std::vector<std::string>& cells, std::size_t& line) {
    // A blank line is no record; some exports end with several.
    while (pos_ < text_.size() && (text_[pos_] == '\n' || text_[pos_] == '\r')) {
      if (text_[pos_] == '\n') ++line_;
      ++pos_;
    }
    if (pos_ >= text_.size()) return false;
    line = line_;
    cells.clear();
    while (true) {
      std::string cell;
      if (pos_ < text_.size() && text_[pos_] == '"') {
        ++pos_;
        while (true) {
          const std::size_t quote = text_.find('"', pos_);
          if (quote == std::string_view::npos)
            throw std::runtime_error("line " + std::to_string(line) + ": a quoted field is not closed");
          for (std::size_t i = pos_; i < quote; ++i) line_ += text_[i] == '\n' ? 1 : 0;
          cell.append(text_.substr(pos_, quote - pos_));
          pos_ = quote + 1;
          if (pos_ < text_.size() && text_[pos_] == '"') {
            cell += '"';
            ++pos_;
            continue;
          }
          break;
        }
        if (pos_ < text_.size() && text_[pos_] != ',' && text_[pos_] != '\n' && text_[pos_] != '\r')
          throw std::runtime_error("line " + std::to_string(line_) + ": text after the closing quote of a field");
      } else {
        const std::size_t end = std::min(text_.find_first_of(",\r\n", pos_), text_.size());
        cell.assign(text_.substr(pos_, end - pos_));
        if (cell.find('"') != std::string::npos)
          throw std::runtime_error("line " + std::to_string(line_) + ": a quote inside an unquoted field");
        pos_ = end;
      }
      cells.push_back(std::move(cell));
      if (pos_ < text_.size() && text_[pos_] == ',') {
        ++pos_;
        continue;
      }
      if (pos_ < text_.size() && text_[pos_] == '\r') ++pos_;
      if (pos_ < text_.size() && text_[pos_] == '\n') {
        ++pos_;
        ++line_;
      }
      return true;
    }
  }

 private:
  std::string_view text_;
  std::size_t pos_ = 0;
  std::size_t line_ = 1;
};

// A JSON key: a string, or an integer as its decimal text (CSV keys are text,
// and user ids arrive as either).
std::optional<std::string> keyText(const nlohmann::json& value) {
  if (value.is_string()) return value.get<std::string>();
  if (value.is_number_integer()) return value.dump();
  return std::nullopt;
}

}  // namespace

void Table::addCell(std::string_view bytes) {
  starts_.push_back(static_cast<std::uint32_t>(text_.size()));
  text_.append(bytes);
}

std::string_view Table::cell(std::size_t row, std::size_t column) const {
  const std::size_t at = row * columns_ + column;
  return std::string_view(text_).substr(starts_[at], starts_[at + 1] - starts_[at]);
}

Table Table::parse(const TableSpec& spec, std::string_view bytes) {
  // Offsets are 32-bit: a 4 GiB lookup file is not reference data.
  if (bytes.size() >= std::numeric_limits<std::uint32_t>::max())
    throw broken(spec, "is " + std::to_string(bytes.size()) + " bytes; at most 4 GiB is supported");
  Table table;
  table.columns_ = 1 + spec.fields.size();
  if (spec.format == Format::csv) {
    CsvReader reader(bytes);
    std::vector<std::string> cells;
    std::size_t line = 0;
    try {
      if (!reader.next(cells, line)) throw std::runtime_error("is empty; the first line names the columns");
      const std::vector<std::string> header = cells;
      std::vector<std::string> wanted{spec.key_column};
      wanted.insert(wanted.end(), spec.fields.begin(), spec.fields.end());
      std::vector<std::size_t> pick;  // header index of the key, then of each field
      for (const auto& name : wanted) {
        const auto it = std::find(header.begin(), header.end(), name);
        if (it == header.end()) throw std::runtime_error("has no column '" + name + "' in its first line");
        pick.push_back(static_cast<std::size_t>(it - header.begin()));
      }
      while (reader.next(cells, line)) {
        if (cells.size() != header.size())
          throw std::runtime_error("line " + std::to_string(line) + " has " + std::to_string(cells.size()) +
                                   " fields, the first line " + std::to_string(header.size()));
        for (const std::size_t i : pick) table.addCell(cells[i]);
      }
    } catch (const std::runtime_error& e) {
      throw broken(spec, e.what());
    }
  } else {
    table.json_cells_ = true;
    const auto doc = nlohmann::json::parse(bytes, nullptr, false);
    if (doc.is_discarded()) throw broken(spec, "is not valid JSON");
    const auto addRecord = [&](const std::string& key, const nlohmann::json& record) {
      if (!record.is_object()) throw broken(spec, "the record of key '" + key + "' is not an object");
      table.addCell(key);
      for (const auto& field : spec.fields) {
        const auto it = record.find(field);
        table.addCell(it == record.end() ? std::string() : it->dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
      }
    };
    if (doc.is_object()) {
      for (const auto& [key, record] : doc.items()) addRecord(key, record);
    } else if (doc.is_array()) {
      for (std::size_t i = 0; i < doc.size(); ++i) {
        const auto& record = doc[i];
        const auto key = record.is_object() && record.contains(spec.key_column)
                             ? keyText(record[spec.key_column])
                             : std::nullopt;
        if (!key)
          throw broken(spec, "record " + std::to_string(i) + " has no string or integer '" + spec.key_column + "'");
        addRecord(*key, record);
      }
    } else {
      throw broken(spec, "holds neither an object of key: record nor an array of records");
    }
  }
  table.starts_.push_back(static_cast<std::uint32_t>(table.text_.size()));
  table.text_.shrink_to_fit();
  const std::size_t rows = (table.starts_.size() - 1) / table.columns_;
  table.order_.resize(rows);
  for (std::size_t i = 0; i < rows; ++i) table.order_[i] = static_cast<std::uint32_t>(i);
  std::sort(table.order_.begin(), table.order_.end(),
            [&](std::uint32_t a, std::uint32_t b) { return table.cell(a, 0) < table.cell(b, 0); });
  for (std::size_t i = 1; i < rows; ++i)
    if (table.cell(table.order_[i - 1], 0) == table.cell(table.order_[i], 0))
      throw broken(spec, "key '" + std::string(table.cell(table.order_[i], 0)) + "' is on more than one row");
  return table;
}

std::optional<std::size_t> Table::find(std::string_view key) const {
  const auto it = std::lower_bound(order_.begin(), order_.end(), key,
                                   [&](std::uint32_t row, std::string_view k) { return cell(row, 0) < k; });
  if (it == order_.end() || cell(*it, 0) != key) return std::nullopt;
  return *it;
}

nlohmann::json Table::value(std::size_t row, std::size_t field) const {
  const std::string_view text = cell(row, field + 1);
  if (!json_cells_) return nlohmann::json(std::string(text));
  if (text.empty()) return nullptr;
  return nlohmann::json::parse(text);
}

namespace {

FileVersion versionOf(const struct stat& st) {
  return FileVersion{st.st_dev, st.st_ino, st.st_size,
                     static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec};
}

// The file's bytes and the version they are of. Throws when the file cannot
// be read, or changed while it was read (a writer still at work).
std::pair<std::string, FileVersion> readFile(const TableSpec& spec) {
  const int fd = ::open(spec.path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw broken(spec, std::string("cannot open: ") + std::strerror(errno));
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat before{};
  if (::fstat(fd, &before) != 0) throw broken(spec, std::string("cannot stat: ") + std::strerror(errno));
  if (!S_ISREG(before.st_mode)) throw broken(spec, "is not a regular file");
  std::string bytes(static_cast<std::size_t>(before.st_size), '\0');
  std::size_t got = 0;
  while (true) {
    if (got == bytes.size()) bytes.resize(bytes.size() + 65536);
    const ssize_t n = ::read(fd, bytes.data() + got, bytes.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw broken(spec, std::string("cannot read: ") + std::strerror(errno));
    if (n == 0) break;
    got += static_cast<std::size_t>(n);
  }
  bytes.resize(got);
  struct stat after{};
  if (::fstat(fd, &after) != 0) throw broken(spec, std::string("cannot stat: ") + std::strerror(errno));
  const FileVersion version = versionOf(after);
  if (!(versionOf(before) == version) || static_cast<std::size_t>(after.st_size) != got)
    throw broken(spec, "changed while it was read");
  return {std::move(bytes), version};
}

std::string specKey(const TableSpec& spec) {
  std::string key = spec.path + '\0' + (spec.format == Format::csv ? "csv" : "json") + '\0' + spec.key_column;
  for (const auto& f : spec.fields) key += '\0' + f;
  return key;
}

}  // namespace

SharedTable::SharedTable(TableSpec spec) : spec_(std::move(spec)) {}

std::shared_ptr<SharedTable> SharedTable::get(const TableSpec& spec) {
  // Instances of every pipeline live in one process and load this .so once,
  // so this map is where they meet; a table lives while an instance holds it.
  static std::mutex mutex;
  static std::map<std::string, std::weak_ptr<SharedTable>> tables;
  const std::lock_guard lock(mutex);
  auto& slot = tables[specKey(spec)];
  if (auto shared = slot.lock()) return shared;
  auto made = std::make_shared<SharedTable>(spec);
  auto [bytes, version] = readFile(spec);
  made->table_ = std::make_shared<const Table>(Table::parse(spec, bytes));
  made->loaded_ = version;
  made->next_check_ns_ = (std::chrono::steady_clock::now() + kCheckInterval).time_since_epoch().count();
  slot = made;
  return made;
}

std::shared_ptr<const Table> SharedTable::snapshot() const {
  const std::lock_guard lock(snapshot_mutex_);
  return table_;
}

void SharedTable::poll(Context& context) {
  const auto now = std::chrono::steady_clock::now().time_since_epoch().count();
  if (now < next_check_ns_.load(std::memory_order_relaxed)) return;
  const std::unique_lock lock(reload_mutex_, std::try_to_lock);
  if (!lock.owns_lock()) return;
  next_check_ns_.store(now + std::chrono::duration_cast<std::chrono::steady_clock::duration>(kCheckInterval).count(),
                       std::memory_order_relaxed);
  struct stat st{};
  if (::stat(spec_.path.c_str(), &st) != 0) {
    // A moment between unlink and rename, or an operator's mistake: the
    // table in memory stays, and the next check looks again.
    if (!refused_ || refused_->inode != 0) {
      context.log(LogLevel::warn, "lookup: " + spec_.path + ": " + std::strerror(errno) + "; keeping the table of " +
                                      std::to_string(snapshot()->rows()) + " rows loaded before");
      refused_ = FileVersion{};
    }
    return;
  }
  const FileVersion seen = versionOf(st);
  if (seen == loaded_ || (refused_ && seen == *refused_)) return;
  try {
    auto [bytes, version] = readFile(spec_);
    auto table = std::make_shared<const Table>(Table::parse(spec_, bytes));
    const std::size_t rows = table->rows();
    {
      const std::lock_guard swap(snapshot_mutex_);
      table_ = std::move(table);
    }
    loaded_ = version;
    refused_.reset();
    generation_.fetch_add(1, std::memory_order_acq_rel);
    context.log(LogLevel::info, "lookup: reloaded " + spec_.path + ": " + std::to_string(rows) + " rows");
    context.count("lookup_reloads");
  } catch (const std::exception& e) {
    const std::string why = e.what();
    // A file still being written is looked at again next time; a complete
    // but broken one is reported once, until it changes again.
    if (why.ends_with("changed while it was read")) return;
    refused_ = seen;
    context.log(LogLevel::error, why + "; keeping the table of " + std::to_string(snapshot()->rows()) +
                                     " rows loaded before");
    context.count("lookup_reload_failures");
  }
}

}  // namespace eventflow::plugins::lookup
