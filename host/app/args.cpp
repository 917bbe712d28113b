#include "app/args.hpp"

#include <charconv>
#include <utility>

namespace eventflow::app {

Args::Args(int argc, char** argv, int first, std::set<std::string> flags) {
  std::string flag;  // the previous argument, when it was a flag
  for (int i = first; i < argc; ++i) {
    std::string a = argv[i];
    if (a.rfind("--", 0) != 0 || a == "--") {
      positional_.push_back(a);
      after_flag_.push_back(std::exchange(flag, {}));
      continue;
    }
    flag.clear();
    std::string name = a.substr(2);
    if (auto eq = name.find('='); eq != std::string::npos) {
      const std::string key = name.substr(0, eq), value = name.substr(eq + 1);
      // "--wait=no" must not turn --wait on.
      if (flags.count(key)) error_ = "--" + key + " takes no value, not '" + value + "'";
      values_[key] = flags.count(key) ? "true" : value;
    } else if (flags.count(name)) {
      values_[name] = "true";
      flag = name;
    } else if (i + 1 < argc) {
      values_[name] = argv[++i];
    } else {
      // Kept, so a misspelt flag at the end is reported as unknown, not as wanting a value.
      values_[name] = "";
      error_ = "--" + name + " needs a value";
    }
  }
}

std::string Args::get(const std::string& name, const std::string& fallback) const {
  auto it = values_.find(name);
  return it == values_.end() ? fallback : it->second;
}

std::optional<long long> Args::number(const std::string& name, long long fallback) {
  auto it = values_.find(name);
  if (it == values_.end()) return fallback;
  long long v = 0;
  const auto& s = it->second;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || p != s.data() + s.size()) {
    error_ = "--" + name + " must be a whole number, not '" + s + "'";
    return std::nullopt;
  }
  return v;
}

std::string Args::extraWords(std::size_t allowed) const {
  if (positional_.size() <= allowed) return {};
  const std::string& word = positional_[allowed];
  const std::string& flag = after_flag_[allowed];
  if (!flag.empty()) return "--" + flag + " takes no value, not '" + word + "'";
  return "unexpected argument '" + word + "'";
}

std::vector<std::string> Args::unknown(const std::set<std::string>& known) const {
  std::vector<std::string> out;
  for (const auto& [k, v] : values_)
    if (!known.count(k)) out.push_back(k);
  return out;
}

}  // namespace eventflow::app
