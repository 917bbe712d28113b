#pragma once
// The states of a raw_events row (DESIGN §6) and their SQL spelling, in one
// place: every statement that asks "is it finished?" takes its list from here.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace eventflow::store {

enum class State : std::uint8_t { received, queued, processing, retrying, done, dead, discarded };

/// The state's spelling in the state column and in answers.
constexpr const char* toString(State state) {
  switch (state) {
    case State::received: return "received";
    case State::queued: return "queued";
    case State::processing: return "processing";
    case State::retrying: return "retrying";
    case State::done: return "done";
    case State::dead: return "dead";
    case State::discarded: return "discarded";
  }
  return "unknown";
}

std::optional<State> parseState(std::string_view text);

/// done, dead and discarded: such an event never changes state on its own
/// again (G2); only a replay or a discard moves a dead one.
constexpr bool isTerminal(State state) {
  return state == State::done || state == State::dead || state == State::discarded;
}

/// SQL lists for `state IN …` / `state NOT IN …`: "('received', 'queued', …)".
const std::string& unfinishedStatesSql();
const std::string& terminalStatesSql();
/// The same as a condition of ORed comparisons: "(state = 'received' OR …)".
/// SQLite runs a constant IN list of more than two values through a
/// temporary b-tree it builds at each execution of the statement, and its
/// partial indexes evaluate their condition on every row written: with IN
/// lists those b-trees were a third of the one writer's time. SQLite uses a
/// partial index only for a query that repeats its condition as written.
const std::string& unfinishedStatesOr();
const std::string& terminalStatesOr();

/// A quoted SQL literal of the state: "'dead'".
std::string sql(State state);

}  // namespace eventflow::store
