#pragma once
// What a fatal signal leaves behind: one JSON log line naming the thread and
// what it was running (pipeline, stage, plugin, event ids) with a symbolised
// backtrace, then the signal's default action (a core dump, exit 128+N). A
// plugin that segfaults still takes the process down (issue 14 isolates it);
// this makes the crash say who did it.

#include <cstddef>
#include <string>

#include <eventflow/plugin.hpp>

namespace eventflow::crash {

/// What the calling thread is doing, as the signal handler reads it. Points
/// at strings owned elsewhere that outlive the scope it is set in.
struct Doing {
  const std::string* pipeline = nullptr;
  const std::string* stage = nullptr;
  const std::string* plugin = nullptr;
  const std::string* event_id = nullptr;       // one event (a validator or enricher)
  const Event* const* events = nullptr;        // or a sink's batch
  std::size_t event_count = 0;
};

/// The calling thread's current Doing, or null.
Doing*& current();

/// Sets the thread's Doing for its lifetime, and restores the one before.
class Scope {
 public:
  explicit Scope(Doing& doing) : previous_(current()) { current() = &doing; }
  ~Scope() { current() = previous_; }
  Scope(const Scope&) = delete;
  Scope& operator=(const Scope&) = delete;

 private:
  Doing* previous_;
};

/// Installs the handler for SIGSEGV, SIGBUS, SIGFPE, SIGILL and SIGABRT. With
/// `note_file` set, the handler also writes there "<event id>\t<stage>\t<plugin>"
/// of the event it was running, for the next start to put on the poison
/// record (takeNote).
void install(const std::string& note_file = {});

/// Gives the calling thread its own signal stack, so that a stack overflow
/// still reaches the handler. Every thread the host names calls it.
void prepareThread();

/// The note a crash left in `note_file`, removed once read: event id, stage,
/// plugin; empty fields when there is none.
struct Note {
  std::string event_id;
  std::string stage;
  std::string plugin;
};
Note takeNote(const std::string& note_file);

}  // namespace eventflow::crash
