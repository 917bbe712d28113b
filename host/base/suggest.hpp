#pragma once
// "did you mean …?" for misspelt names: plugins, config keys, CLI flags.

#include <string>
#include <string_view>
#include <vector>

namespace eventflow {

/// The candidate nearest to `word` by edit distance (insert, delete, replace,
/// swap of neighbours), if one is within 2 and `word` is not itself one;
/// empty otherwise. Ties go to the earliest candidate.
std::string nearest(std::string_view word, const std::vector<std::string>& candidates);

/// " (did you mean 'x'?)" for nearest(word, candidates), else "".
std::string didYouMean(std::string_view word, const std::vector<std::string>& candidates,
                       std::string_view prefix = {});

}  // namespace eventflow
