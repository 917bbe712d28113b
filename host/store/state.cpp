#include "store/state.hpp"

#include <array>

namespace eventflow::store {
namespace {

constexpr std::array kAll{State::received, State::queued,  State::processing, State::retrying,
                          State::done,     State::dead,    State::discarded};

std::string listOf(bool terminal) {
  std::string out = "(";
  for (const State s : kAll) {
    if (isTerminal(s) != terminal) continue;
    if (out.size() > 1) out += ", ";
    out += sql(s);
  }
  return out + ")";
}

std::string orOf(bool terminal) {
  std::string out = "(";
  for (const State s : kAll) {
    if (isTerminal(s) != terminal) continue;
    if (out.size() > 1) out += " OR ";
    out += "state = " + sql(s);
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
  static const std::string list = listOf(false);
  return list;
}

const std::string& terminalStatesSql() {
  static const std::string list = listOf(true);
  return list;
}

const std::string& unfinishedStatesOr() {
  static const std::string text = orOf(false);
  return text;
}

const std::string& terminalStatesOr() {
  static const std::string text = orOf(true);
  return text;
}

}  // namespace eventflow::store
