#include <gtest/gtest.h>

#include "base/suggest.hpp"

using eventflow::didYouMean;
using eventflow::nearest;

TEST(Suggest, NamesTheNearestCandidateWithinTwoEdits) {
  const std::vector<std::string> plugins{"classify", "add-fields", "json-schema", "time-window"};
  EXPECT_EQ(nearest("clasify", plugins), "classify");     // one deleted
  EXPECT_EQ(nearest("clasisfy", plugins), "classify");    // one inserted, one swapped
  EXPECT_EQ(nearest("add-feilds", plugins), "add-fields");  // a swapped pair is one slip
  EXPECT_EQ(nearest("max_futur", {"field", "max_future", "max_past"}), "max_future");
  EXPECT_EQ(didYouMean("confg", {"config", "help"}, "--"), " (did you mean '--config'?)");
}

TEST(Suggest, SaysNothingWhenNothingIsCloseOrTheWordIsKnown) {
  EXPECT_EQ(nearest("frobnicate", {"config", "help"}), "");
  EXPECT_EQ(nearest("classify", {"classify", "clarify"}), "") << "a known word needs no suggestion";
  EXPECT_EQ(nearest("ab", {"cd"}), "") << "two edits turn any two letters into any others";
  EXPECT_EQ(didYouMean("xyz", {"config"}), "");
}
