// The embedded workers' note of the events in hand (runtime::InHandFile),
// which the next start reads after a crash (takeInHand) to count those
// events' deliveries (poison, G5).

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include "runtime/workers.hpp"

using eventflow::queue::Message;
using eventflow::runtime::InHandFile;
using eventflow::runtime::takeInHand;

namespace {

std::filesystem::path freshDir() {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  const auto dir = std::filesystem::temp_directory_path() /
                   ("eventflow-inhand-" + std::string(info->name()) + "-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

std::vector<Message> batch(const std::vector<std::string>& ids) {
  std::vector<Message> out;
  for (const auto& id : ids) out.push_back(Message{.id = id});
  return out;
}

struct stat statOf(const std::filesystem::path& p) {
  struct stat st {};
  EXPECT_EQ(::stat(p.c_str(), &st), 0) << p;
  return st;
}

TEST(InHand, ASmallerBatchLeavesOnlyItsOwnIdsAndTheFileIsNeverTruncated) {
  const auto dir = freshDir();
  const auto file = dir / "0.ids";
  InHandFile note(file.string());
  note.note(batch({"a1", "a2", "a3", "a4", "a5"}));
  const struct stat first = statOf(file);
  note.note(batch({"b1", "b2"}));
  const struct stat second = statOf(file);
  // The same file, overwritten in place: not shrunk, not recreated.
  EXPECT_EQ(second.st_ino, first.st_ino);
  EXPECT_EQ(second.st_size, first.st_size);
  note.close();
  EXPECT_EQ(takeInHand(dir.string()), (std::vector<std::string>{"b1", "b2"})) << "the last batch's ids alone";
  EXPECT_FALSE(std::filesystem::exists(file)) << "taken notes are removed";
  std::filesystem::remove_all(dir);
}

TEST(InHand, ALargerBatchThanAnyBeforeIsNotedWhole) {
  const auto dir = freshDir();
  InHandFile note((dir / "3.ids").string());
  note.note(batch({"x"}));
  std::vector<std::string> many;
  for (int i = 0; i < 600; ++i) many.push_back("id-" + std::to_string(1000 + i));
  note.note(batch(many));
  note.close();
  EXPECT_EQ(takeInHand(dir.string()), many);
  std::filesystem::remove_all(dir);
}

TEST(InHand, NotesOfSeveralWorkersAreTakenTogetherWithoutDuplicates) {
  const auto dir = freshDir();
  InHandFile one((dir / "1.ids").string()), two((dir / "2.ids").string());
  one.note(batch({"c", "a"}));
  two.note(batch({"b", "a"}));
  // Still open, as when the process crashed: the writes are in the file.
  EXPECT_EQ(takeInHand(dir.string()), (std::vector<std::string>{"a", "b", "c"}));
  std::filesystem::remove_all(dir);
}

}  // namespace
