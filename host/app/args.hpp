#pragma once
// A small flag reader shared by the commands: --name value, --name=value, --flag.

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace eventflow::app {

class Args {
 public:
  /// `flags` take no value; every other --name takes one.
  Args(int argc, char** argv, int first, std::set<std::string> flags);
  bool ok() const { return error_.empty(); }
  const std::string& error() const { return error_; }
  bool has(const std::string& name) const { return values_.count(name) > 0; }
  std::string get(const std::string& name, const std::string& fallback = {}) const;
  /// A whole number, or nullopt (and an error) when the value is not one.
  std::optional<long long> number(const std::string& name, long long fallback);
  const std::vector<std::string>& positional() const { return positional_; }
  /// Empty, or the error for the first word past the first `allowed`: a word
  /// right after a flag reads as that flag's value ("--wait takes no value,
  /// not 'yes'"), any other as an argument the command does not take.
  std::string extraWords(std::size_t allowed) const;
  /// Every name given that is not in `known`.
  std::vector<std::string> unknown(const std::set<std::string>& known) const;

 private:
  std::map<std::string, std::string> values_;
  std::vector<std::string> positional_;
  std::vector<std::string> after_flag_;  // per word: the flag just before it, or empty
  std::string error_;
};

}  // namespace eventflow::app
