#include "store/state.hpp"

#include <array>

namespace eventflow::store {
namespace {

constexpr std::array kAll{State::received, State::queued,  State::processing, State::retrying,
                          State::done,     State::dead,    State::discarded};

// "('a', 'b')", or as comparisons "(state = 'a' OR state = 'b')".
std::string statesOf(bool terminal, bool compared) {
  std::string out = "(";
  for (const State s : kAll) {
    if (isTerminal(s) != terminal) continue;
    if (out.size() > 1) out += compared ? " OR " : ", ";
    out += (compared ? "state = " : "") + sql(s);
  }
  return out + ")";
}

}  // namespace

std::optional<State> parseState(std::string_view text) {
  for (const State s : kAll)
    if (text == toString(s)) return s;
  return std::nullopt;
}

std::string sql(State state) { return std::string("'") + toString(state) + "'"; }

const std::string& unfinishedStatesSql() {
  static const std::string list = statesOf(false, false);
  return list;
}

const std::string& terminalStatesSql() {
  static const std::string list = statesOf(true, false);
  return list;
}

const std::string& unfinishedStatesOr() {
  static const std::string text = statesOf(false, true);
  return text;
}

const std::string& terminalStatesOr() {
  static const std::string text = statesOf(true, true);
  return text;
}

}  // namespace eventflow::store
