#include "base/crash.hpp"

#include <backtrace.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <memory>

namespace eventflow::crash {
namespace {

// Everything the handler touches is set up before it can run: no allocation,
// no locks, no stdio inside it. libbacktrace reads the debug information with
// mmap, never malloc, and is safe to call from a signal handler (its own
// documentation says so for a threaded state); glibc's backtrace_symbols and
// Boost.Stacktrace's to_string both allocate.
backtrace_state* g_backtrace = nullptr;
char g_note_file[4096] = {};
std::atomic<bool> g_crashing{false};

// The line is built here: 64 KiB holds 64 frames with long paths.
char g_line[64 * 1024];
std::size_t g_used = 0;

void append(const char* text, std::size_t n) {
  if (g_used + n > sizeof g_line - 4) n = sizeof g_line - 4 - g_used;
  std::memcpy(g_line + g_used, text, n);
  g_used += n;
}
void append(const char* text) { append(text, std::strlen(text)); }

// A JSON string's contents: quotes, backslashes and control characters
// escaped; bytes above 0x7f are passed through (log readers replace invalid
// UTF-8 as they do for every other line).
void appendEscaped(const char* text, std::size_t n) {
  static constexpr char kHex[] = "0123456789abcdef";
  for (std::size_t i = 0; i < n; ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c == '"' || c == '\\') {
      const char out[2] = {'\\', static_cast<char>(c)};
      append(out, 2);
    } else if (c < 0x20) {
      const char out[6] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 15]};
      append(out, 6);
    } else {
      append(reinterpret_cast<const char*>(&c), 1);
    }
  }
}

void appendField(const char* key, const char* value, std::size_t n) {
  append(",\"");
  append(key);
  append("\":\"");
  appendEscaped(value, n);
  append("\"");
}
void appendField(const char* key, const std::string* value) {
  if (value) appendField(key, value->data(), value->size());
}

void appendNumber(std::uint64_t v, int width = 0) {
  char digits[24];
  int n = 0;
  do {
    digits[n++] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v > 0);
  while (n < width) digits[n++] = '0';
  while (n > 0) append(&digits[--n], 1);
}

// RFC 3339 in UTC with milliseconds, as the logger writes it; gmtime_r is not
// async-signal-safe, so the civil date is computed here.
void appendTimestamp() {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  const std::int64_t secs = ts.tv_sec;
  const std::int64_t days = secs / 86400;
  const std::int64_t rem = secs % 86400;
  // Howard Hinnant's civil_from_days.
  const std::int64_t z = days + 719468;
  const std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const auto doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  const unsigned d = doy - (153 * mp + 2) / 5 + 1;
  const unsigned m = mp < 10 ? mp + 3 : mp - 9;
  const std::int64_t y = static_cast<std::int64_t>(yoe) + era * 400 + (m <= 2);
  append("\"timestamp\":\"");
  appendNumber(static_cast<std::uint64_t>(y), 4);
  append("-");
  appendNumber(m, 2);
  append("-");
  appendNumber(d, 2);
  append("T");
  appendNumber(static_cast<std::uint64_t>(rem / 3600), 2);
  append(":");
  appendNumber(static_cast<std::uint64_t>(rem % 3600 / 60), 2);
  append(":");
  appendNumber(static_cast<std::uint64_t>(rem % 60), 2);
  append(".");
  appendNumber(static_cast<std::uint64_t>(ts.tv_nsec / 1'000'000), 3);
  append("Z\"");
}

const char* signalName(int sig) {
  switch (sig) {
    case SIGSEGV: return "SIGSEGV";
    case SIGBUS: return "SIGBUS";
    case SIGFPE: return "SIGFPE";
    case SIGILL: return "SIGILL";
    case SIGABRT: return "SIGABRT";
    default: return "signal";
  }
}

void appendHex(std::uintptr_t v) {
  char hex[19] = "0x";
  int n = 2;
  for (int shift = 60; shift >= 0; shift -= 4) {
    const unsigned nibble = static_cast<unsigned>(v >> shift) & 15u;
    if (n == 2 && nibble == 0 && shift > 0) continue;
    hex[n++] = "0123456789abcdef"[nibble];
  }
  append(hex, static_cast<std::size_t>(n));
}

int g_frames = 0;

int onFrame(void*, std::uintptr_t pc, const char* file, int line, const char* function) {
  if (pc == 0 || g_frames >= 64) return 1;
  append(g_frames++ ? ",\"" : "\"");
  appendHex(pc);
  if (function) {
    append(" ");
    appendEscaped(function, std::strlen(function));
  }
  if (file) {
    append(" at ");
    appendEscaped(file, std::strlen(file));
    append(":");
    appendNumber(static_cast<std::uint64_t>(line > 0 ? line : 0));
  }
  append("\"");
  return 0;
}

void onError(void*, const char*, int) {}

void writeAll(int fd, const char* data, std::size_t n) {
  while (n > 0) {
    const ssize_t w = ::write(fd, data, n);
    if (w <= 0) return;
    data += w;
    n -= static_cast<std::size_t>(w);
  }
}

void handler(int sig, siginfo_t* info, void*) {
  if (g_crashing.exchange(true)) {
    // A second thread crashing meanwhile waits for the first to take the
    // process down; the first one's line is the one that matters.
    for (;;) ::pause();
  }
  g_used = 0;
  append("{");
  appendTimestamp();
  append(",\"level\":\"critical\",\"message\":\"fatal signal: the process stops\"");
  appendField("signal", signalName(sig), std::strlen(signalName(sig)));
  char thread[17] = {};
  ::prctl(PR_GET_NAME, thread, 0, 0, 0);
  appendField("thread", thread, std::strlen(thread));
  if (info && (sig == SIGSEGV || sig == SIGBUS)) {
    append(",\"fault_address\":\"");
    appendHex(reinterpret_cast<std::uintptr_t>(info->si_addr));
    append("\"");
  }
  const Doing* doing = current();
  const std::string* blamed_id = nullptr;
  if (doing) {
    appendField("pipeline", doing->pipeline);
    appendField("stage", doing->stage);
    appendField("plugin", doing->plugin);
    if (doing->event_id) {
      appendField("event_id", doing->event_id);
      blamed_id = doing->event_id;
    } else if (doing->events && doing->event_count > 0) {
      append(",\"event_ids\":[");
      for (std::size_t i = 0; i < doing->event_count && i < 64; ++i) {
        append(i ? ",\"" : "\"");
        appendEscaped(doing->events[i]->id.data(), doing->events[i]->id.size());
        append("\"");
      }
      append("]");
      if (doing->event_count == 1) blamed_id = &doing->events[0]->id;
    }
  }
  append(",\"backtrace\":[");
  g_frames = 0;
  if (g_backtrace) backtrace_full(g_backtrace, 0, onFrame, onError, nullptr);
  append("]}\n");
  writeAll(STDERR_FILENO, g_line, g_used);

  // The event a validator or enricher (or a sink given one event) crashed on,
  // for the poison record the next start writes.
  if (blamed_id && g_note_file[0]) {
    const int fd = ::open(g_note_file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd >= 0) {
      g_used = 0;
      append(blamed_id->data(), blamed_id->size());
      append("\t");
      if (doing->stage) append(doing->stage->data(), doing->stage->size());
      append("\t");
      if (doing->plugin) append(doing->plugin->data(), doing->plugin->size());
      append("\n");
      writeAll(fd, g_line, g_used);
      ::close(fd);
    }
  }
  // SA_RESETHAND restored the default action: raising again ends the process
  // as the signal would have (core dump, exit 128+N).
  ::raise(sig);
}

}  // namespace

Doing*& current() {
  static thread_local Doing* doing = nullptr;
  return doing;
}

namespace {
// One per thread, freed when the thread ends; the size covers the handler's
// frames and libbacktrace's.
constexpr std::size_t kAltStackSize = 256 * 1024;
struct AltStack {
  std::unique_ptr<char[]> memory{new char[kAltStackSize]};
  AltStack() {
    stack_t ss{};
    ss.ss_sp = memory.get();
    ss.ss_size = kAltStackSize;
    ::sigaltstack(&ss, nullptr);
  }
  ~AltStack() {
    stack_t ss{};
    ss.ss_flags = SS_DISABLE;
    ::sigaltstack(&ss, nullptr);
  }
};
}  // namespace

void prepareThread() { static thread_local AltStack stack; }

void install(const std::string& note_file) {
  if (note_file.size() < sizeof g_note_file) std::memcpy(g_note_file, note_file.c_str(), note_file.size() + 1);
  if (!g_backtrace) g_backtrace = backtrace_create_state(nullptr, 1, onError, nullptr);
  prepareThread();
  struct sigaction action{};
  action.sa_sigaction = handler;
  action.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESETHAND;
  sigemptyset(&action.sa_mask);
  for (const int sig : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT}) ::sigaction(sig, &action, nullptr);
}

Note takeNote(const std::string& note_file) {
  Note note;
  std::ifstream in(note_file);
  if (!in) return note;
  std::getline(in, note.event_id, '\t');
  std::getline(in, note.stage, '\t');
  std::getline(in, note.plugin);
  in.close();
  std::remove(note_file.c_str());
  return note;
}

}  // namespace eventflow::crash
