#pragma once
// A store of each engine, fresh and migrated, for tests parameterised over
// "sqlite" and "postgresql".

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <memory>
#include <string>

#include "backends.hpp"
#include "http/journey_json.hpp"
#include "store/store.hpp"

namespace eventflow::testing {

class StoreTest : public ::testing::TestWithParam<std::string> {
 protected:
  explicit StoreTest(std::string tag) : tag_(std::move(tag)) {}

  void SetUp() override {
    if (GetParam() == "sqlite") {
      dir_ = std::filesystem::temp_directory_path() / ("ef-" + tag_ + "-" + std::to_string(::getpid()));
      std::filesystem::remove_all(dir_);
      url_ = "sqlite://" + (dir_ / "ef.db").string();
    } else {
      url_ = freshDatabase(tag_);
      ASSERT_FALSE(url_.empty());
    }
    auto opened = store::openStore(url_);
    ASSERT_TRUE(opened) << opened.error().message;
    store_ = std::move(*opened);
    auto migrated = store_->migrate();
    ASSERT_TRUE(migrated) << migrated.error().message;
  }
  /// The event's journey as GET /events/{id} answers it; null when unknown.
  nlohmann::json journey(const std::string& id) {
    auto j = store_->journey(id);
    EXPECT_TRUE(j) << j.error().message;
    if (!j || !*j) return nullptr;
    return http::journeyJson(**j);
  }

  void TearDown() override {
    store_.reset();
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

  std::string tag_;
  std::string url_;
  std::filesystem::path dir_;
  std::unique_ptr<store::Store> store_;
};

}  // namespace eventflow::testing
