#include "file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <map>
#include <mutex>
#include <stdexcept>
#include <system_error>
#include <utility>

#include "common/duration.hpp"
#include "common/ndjson.hpp"

namespace eventflow::plugins {
namespace file_sink {

namespace fs = std::filesystem;

namespace {

constexpr std::size_t kStampLength = 16;  // 20261206T001500Z

std::string errorText(int error) { return std::strerror(error); }

// Makes a rename or a new file in `folder` survive a power cut: the entry
// lives in the folder, which fsync of the file alone does not cover.
bool syncFolder(const fs::path& folder, int& error) {
  const int fd = ::open(folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    error = errno;
    return false;
  }
  const bool ok = ::fsync(fd) == 0;
  if (!ok) error = errno;
  ::close(fd);
  return ok;
}

// (stamp, counter) of a rotated file of `path`, when `name` is one.
std::optional<std::pair<std::string, unsigned long>> rotationOf(const fs::path& path, const std::string& name) {
  const std::string prefix = path.stem().string() + "-";
  const std::string ext = path.extension().string();
  if (name.size() < prefix.size() + kStampLength + ext.size() || !name.starts_with(prefix) || !name.ends_with(ext))
    return std::nullopt;
  const std::string middle = name.substr(prefix.size(), name.size() - prefix.size() - ext.size());
  const std::string stamp = middle.substr(0, kStampLength);
  for (std::size_t i = 0; i < kStampLength; ++i) {
    const bool digit = stamp[i] >= '0' && stamp[i] <= '9';
    if (i == 8 ? stamp[i] != 'T' : i == 15 ? stamp[i] != 'Z' : !digit) return std::nullopt;
  }
  unsigned long counter = 0;
  if (middle.size() > kStampLength) {
    const std::string rest = middle.substr(kStampLength);
    if (rest.size() < 2 || rest.size() > 10 || rest[0] != '.' ||
        !std::all_of(rest.begin() + 1, rest.end(), [](char c) { return c >= '0' && c <= '9'; }))
      return std::nullopt;
    counter = std::stoul(rest.substr(1));
  }
  return std::make_pair(stamp, counter);
}

}  // namespace

fs::path rotatedName(const fs::path& path, std::chrono::system_clock::time_point when, unsigned counter) {
  const std::time_t t = std::chrono::system_clock::to_time_t(when);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char stamp[kStampLength + 1];
  std::strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &tm);
  std::string name = path.stem().string() + "-" + stamp;
  if (counter > 0) name += "." + std::to_string(counter);
  return path.parent_path() / (name + path.extension().string());
}

/// One open file and its rotation, shared by every instance writing the same
/// path; all calls hold its mutex.
class Writer {
 public:
  explicit Writer(FileSink::Settings settings) : settings_(std::move(settings)) {}
  ~Writer() {
    if (fd_ >= 0) ::close(fd_);
  }
  Writer(const Writer&) = delete;
  Writer& operator=(const Writer&) = delete;

  const FileSink::Settings& settings() const { return settings_; }

  std::vector<Result> write(std::span<Event* const> events, Context& context) {
    const ndjson::Lines lines = ndjson::render(events);
    std::vector<Result> results(events.size(), Result::ok());
    const std::lock_guard lock(mutex_);
    std::size_t next = 0;
    while (next < events.size()) {
      const std::size_t base = next == 0 ? 0 : lines.ends[next - 1];
      std::string error;
      if (!ready(lines.ends[next] - base, context, error)) {
        ndjson::settle(results, lines, next, events.size() - next, base, 0, unavailable(error));
        break;
      }
      // As many lines as fit under max_bytes, and at least one.
      std::size_t end = next + 1;
      while (end < events.size() &&
             (settings_.max_bytes == 0 || size_ + (lines.ends[end] - base) <= settings_.max_bytes))
        ++end;
      const std::string_view chunk(lines.text.data() + base, lines.ends[end - 1] - base);
      int write_error = 0;
      const std::size_t written = ndjson::writeAll(fd_, chunk, write_error);
      if (written == chunk.size()) {
        size_ += written;
        next = end;
        continue;
      }
      // A torn line would glue itself to the next one written; cut the file
      // back to the last whole line so the retry starts clean.
      std::size_t whole = 0;
      for (std::size_t i = next; i < end && lines.ends[i] - base <= written; ++i) whole = lines.ends[i] - base;
      if (::ftruncate(fd_, static_cast<off_t>(size_ + whole)) != 0)
        context.log(LogLevel::error, "file: " + settings_.path.string() + ": cannot cut a torn line off: " +
                                         errorText(errno));
      size_ += whole;
      ndjson::settle(results, lines, next, events.size() - next, base, whole,
                     unavailable("cannot write: " + errorText(write_error)));
      break;
    }
    return results;
  }

  Result sync() {
    const std::lock_guard lock(mutex_);
    if (fd_ >= 0 && ::fdatasync(fd_) != 0) return unavailable("cannot fsync: " + errorText(errno));
    return Result::ok();
  }

 private:
  Result unavailable(const std::string& why) const {
    return Result::retry("file " + settings_.path.string() + ": " + why, "sink_unavailable");
  }

  // An open file with room for a line of `line_bytes`, rotating first when
  // the current one is full or old.
  bool ready(std::size_t line_bytes, Context& context, std::string& error) {
    if (fd_ < 0 && !open(error)) return false;
    const bool full = settings_.max_bytes > 0 && size_ + line_bytes > settings_.max_bytes;
    const bool old = settings_.max_age.count() > 0 && std::chrono::steady_clock::now() - opened_ >= settings_.max_age;
    if (size_ == 0 || (!full && !old)) return true;
    return rotate(context, error) && open(error);
  }

  bool open(std::string& error) {
    const fs::path folder = settings_.path.parent_path();
    std::error_code ec;
    fs::create_directories(folder, ec);
    if (ec) {
      error = "cannot create the folder " + folder.string() + ": " + ec.message();
      return false;
    }
    // 0640 less the umask: events carry personal data more often than not.
    fd_ = ::open(settings_.path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    struct stat st{};
    int sync_error = 0;
    if (fd_ < 0 || ::fstat(fd_, &st) != 0 || !syncFolder(folder, sync_error)) {
      error = "cannot open: " + errorText(sync_error != 0 ? sync_error : errno);
      if (fd_ >= 0) ::close(fd_);
      fd_ = -1;
      return false;
    }
    size_ = static_cast<std::uint64_t>(st.st_size);
    opened_ = std::chrono::steady_clock::now();
    return true;
  }

  bool rotate(Context& context, std::string& error) {
    // Lines other instances wrote and have not flushed yet go to disk before
    // the file is closed; their flush() syncs only the new file.
    if (::fdatasync(fd_) != 0) {
      error = "cannot fsync before rotating: " + errorText(errno);
      return false;
    }
    ::close(fd_);
    fd_ = -1;
    const auto now = std::chrono::system_clock::now();
    // Past the highest counter of this second, not into a gap that pruning
    // left, so that name order stays rotation order.
    const std::string stamp = rotatedName(settings_.path, now, 0).filename().string().substr(
        settings_.path.stem().string().size() + 1, kStampLength);
    unsigned counter = 0;
    for (const auto& [when, file] : listRotated())
      if (when.first == stamp) counter = static_cast<unsigned>(when.second) + 1;
    const fs::path target = rotatedName(settings_.path, now, counter);
    if (::rename(settings_.path.c_str(), target.c_str()) != 0) {
      error = "cannot rotate to " + target.string() + ": " + errorText(errno);
      return false;
    }
    int sync_error = 0;
    if (!syncFolder(settings_.path.parent_path(), sync_error))
      context.log(LogLevel::warn, "file: cannot fsync " + settings_.path.parent_path().string() +
                                      " after rotating: " + errorText(sync_error));
    context.count("file_rotations");
    prune(context);
    return true;
  }

  // The rotated files of this path, oldest first.
  std::vector<std::pair<std::pair<std::string, unsigned long>, fs::path>> listRotated() const {
    std::vector<std::pair<std::pair<std::string, unsigned long>, fs::path>> rotated;
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(settings_.path.parent_path(), ec))
      if (auto when = rotationOf(settings_.path, entry.path().filename().string()); when && entry.is_regular_file(ec))
        rotated.emplace_back(std::move(*when), entry.path());
    std::sort(rotated.begin(), rotated.end());
    return rotated;
  }

  void prune(Context& context) {
    if (!settings_.keep) return;
    const auto rotated = listRotated();
    if (rotated.size() <= *settings_.keep) return;
    std::error_code ec;
    for (std::size_t i = 0; i + *settings_.keep < rotated.size(); ++i)
      if (!fs::remove(rotated[i].second, ec) && ec)
        context.log(LogLevel::warn, "file: cannot delete the old " + rotated[i].second.string() + ": " + ec.message());
  }

  std::mutex mutex_;
  FileSink::Settings settings_;
  int fd_ = -1;
  std::uint64_t size_ = 0;
  std::chrono::steady_clock::time_point opened_;
};

namespace {

bool sameSettings(const FileSink::Settings& a, const FileSink::Settings& b) {
  return a.max_bytes == b.max_bytes && a.max_age == b.max_age && a.keep == b.keep;
}

// Instances of every pipeline share this .so, so two stages (or N worker
// threads) naming one path meet here and share one Writer.
std::shared_ptr<Writer> writerFor(const FileSink::Settings& settings) {
  static std::mutex mutex;
  static std::map<fs::path, std::weak_ptr<Writer>> writers;
  const std::lock_guard lock(mutex);
  auto& slot = writers[settings.path];
  if (auto shared = slot.lock()) {
    if (!sameSettings(shared->settings(), settings))
      throw std::invalid_argument("file: another stage writes " + settings.path.string() +
                                  " with other max_bytes, max_age or keep; one file has one rotation");
    return shared;
  }
  auto made = std::make_shared<Writer>(settings);
  slot = made;
  return made;
}

}  // namespace
}  // namespace file_sink

FileSink::FileSink(const nlohmann::json& config, Context& context) {
  if (!config.is_object()) throw std::invalid_argument("file: config must be an object");
  Settings settings;
  const auto path = config.find("path");
  if (path == config.end() || !path->is_string() || path->get_ref<const std::string&>().empty())
    throw std::invalid_argument("file: path is required (the NDJSON file to append to)");
  settings.path = std::filesystem::path(context.resolvePath(path->get<std::string>())).lexically_normal();
  if (!settings.path.has_filename())
    throw std::invalid_argument("file: path " + path->dump() + " names a folder, not a file");
  if (const auto it = config.find("max_bytes"); it != config.end()) {
    if (!it->is_number_integer() || it->get<std::int64_t>() <= 0)
      throw std::invalid_argument("file: max_bytes must be a positive integer, not " + it->dump());
    settings.max_bytes = it->get<std::uint64_t>();
  }
  if (const auto it = config.find("max_age"); it != config.end()) {
    const auto age = it->is_string() ? parseConfigDuration(it->get_ref<const std::string&>(), std::chrono::seconds(1),
                                                           std::chrono::hours(24 * 366))
                                     : std::nullopt;
    if (!age)
      throw std::invalid_argument("file: max_age " + it->dump() + " is not a duration from 1s to 366d (\"1h\", \"1d\")");
    settings.max_age = *age;
  }
  if (const auto it = config.find("keep"); it != config.end()) {
    if (!it->is_number_integer() || it->get<std::int64_t>() < 0)
      throw std::invalid_argument("file: keep must be a count of rotated files (0 or more), not " + it->dump());
    settings.keep = it->get<std::size_t>();
  }
  // `eventflow validate`: the config is checked; no file or folder is touched.
  if (context.setting("validate_only") == "1") return;
  writer_ = file_sink::writerFor(settings);
  context_ = &context;
}

FileSink::~FileSink() = default;

std::vector<Result> FileSink::write(std::span<Event* const> events) { return writer_->write(events, *context_); }

Result FileSink::flush() { return writer_->sync(); }

}  // namespace eventflow::plugins
