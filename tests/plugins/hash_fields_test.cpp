#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include "plugin_test.hpp"
#include "hash_fields.hpp"
#include "schema_check.hpp"
#include "temp_dir.hpp"

namespace eventflow::plugins {
namespace {

using test::FakeContext;
using test::makeEvent;

// RFC 4231 test case 1: key 20 × 0x0b, data "Hi There".
const std::string kKey(20, '\x0b');
constexpr const char* kHiThereHex = "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7";
constexpr const char* kHiThereBase64 = "sDRMYdjbOFNcqK/OrwvxK4gdwgDJgz2nJuk3bC4yz/c=";
constexpr const char* k42Hex = "9aa61153598dd1d96a327c488b5ad716994a1a98a6f5cffd43692a397d2ce639";
constexpr const char* kAliceHex = "271f85e7ee0abf2d5101d39ef32e38542cc8474912063181d1bef9e8914a1351";

class HashFieldsTest : public ::testing::Test {
 protected:
  std::string keyFile(const std::string& bytes, mode_t mode = 0600, const std::string& name = "hash.key") {
    const auto file = dir_.write(name, bytes);
    ::chmod(file.c_str(), mode);
    return file.string();
  }
  nlohmann::json config(nlohmann::json extra = nlohmann::json::object()) {
    nlohmann::json c = {{"fields", {"user_id", "properties.email", "properties.n", "properties.obj"}},
                        {"key_file", keyFile(kKey)}};
    c.update(extra);
    return c;
  }
  std::string refused(const nlohmann::json& c) { return test::refusal<HashFieldsEnricher>(c, context_); }

  test::TempDir dir_;
  FakeContext context_{dir_.path()};
};

TEST_F(HashFieldsTest, ReplacesStringsWithTheirHmacSha256InHexOrBase64) {
  HashFieldsEnricher hex(config(), context_);
  Event event = makeEvent({{"event_type", "signup"}, {"user_id", "Hi There"}, {"properties", {{"plan", "pro"}}}});
  ASSERT_TRUE(hex.enrich(event).isOk());
  EXPECT_EQ(event.body["user_id"], kHiThereHex);
  EXPECT_EQ(event.body["properties"], nlohmann::json({{"plan", "pro"}})) << "missing paths are left alone";

  HashFieldsEnricher base64(config({{"encoding", "base64"}}), context_);
  Event again = makeEvent({{"event_type", "signup"}, {"user_id", "Hi There"}});
  ASSERT_TRUE(base64.enrich(again).isOk());
  EXPECT_EQ(again.body["user_id"], kHiThereBase64);
}

TEST_F(HashFieldsTest, NonStringsAreHashedOverTheirJsonTextAndNullStaysNull) {
  HashFieldsEnricher enricher(config(), context_);
  Event event = makeEvent({{"event_type", "t"},
                           {"user_id", nullptr},
                           {"properties", {{"n", 42}, {"obj", {{"b", 2}, {"a", 1}}}, {"email", "42"}}}});
  ASSERT_TRUE(enricher.enrich(event).isOk());
  EXPECT_TRUE(event.body["user_id"].is_null());
  EXPECT_EQ(event.body["properties"]["n"], k42Hex);
  EXPECT_EQ(event.body["properties"]["email"], k42Hex) << "42 and \"42\" are one pseudonym";
  EXPECT_EQ(event.body["properties"]["obj"], enricher.digest(R"({"a":1,"b":2})"));
}

TEST_F(HashFieldsTest, KeepPrefixKeepsLeadingCharactersOfLongerStringsOnly) {
  HashFieldsEnricher enricher(config({{"keep_prefix", 3}}), context_);
  Event event = makeEvent({{"event_type", "t"},
                           {"user_id", "alice@example.com"},
                           {"properties", {{"email", "ébène"}, {"n", "abc"}, {"obj", 1234}}}});
  ASSERT_TRUE(enricher.enrich(event).isOk());
  EXPECT_EQ(event.body["user_id"], std::string("ali") + kAliceHex);
  EXPECT_EQ(event.body["properties"]["email"], "ébè" + enricher.digest("ébène")) << "code points, not bytes";
  EXPECT_EQ(event.body["properties"]["n"], enricher.digest("abc")) << "a string of keep_prefix characters is not kept";
  EXPECT_EQ(event.body["properties"]["obj"], enricher.digest("1234")) << "non-strings keep nothing";
}

TEST_F(HashFieldsTest, OneTrailingNewlineOfTheKeyFileIsNotPartOfTheKey) {
  HashFieldsEnricher plain(config(), context_);
  HashFieldsEnricher newline(config({{"key_file", keyFile(kKey + "\n", 0400, "newline.key")}}), context_);
  EXPECT_EQ(plain.digest("Hi There"), newline.digest("Hi There"));
}

TEST_F(HashFieldsTest, RefusesAKeyFileOthersCanReadOrThatIsNotAKey) {
  EXPECT_NE(refused(config({{"key_file", keyFile(kKey, 0644, "open.key")}})).find("has mode 0644"), std::string::npos);
  EXPECT_NE(refused(config({{"key_file", keyFile(kKey, 0660, "group.key")}})).find("chmod 600"), std::string::npos);
  EXPECT_NE(refused(config({{"key_file", keyFile("short", 0600, "short.key")}})).find("holds 5 bytes"),
            std::string::npos);
  EXPECT_NE(refused(config({{"key_file", keyFile(std::string(5000, 'k'), 0600, "huge.key")}})).find("at most 4096"),
            std::string::npos);
  EXPECT_NE(refused(config({{"key_file", "missing.key"}})).find("missing.key: cannot open"), std::string::npos);
  EXPECT_NE(refused(config({{"key_file", dir_.path().string()}})).find("not a regular file"), std::string::npos);
  EXPECT_NE(refused(config({{"fields", {"a..b"}}})).find("empty segment"), std::string::npos);
  if (::geteuid() == 0) {
    const std::string other = keyFile(kKey, 0600, "other.key");
    ASSERT_EQ(::chown(other.c_str(), 65534, 65534), 0);
    EXPECT_NE(refused(config({{"key_file", other}})).find("is owned by uid 65534, but the host runs as uid 0"),
              std::string::npos);
  }
}

TEST_F(HashFieldsTest, SchemaRefusesBadShapes) {
  const test::SchemaCheck schema(kHashFieldsConfigSchema);
  EXPECT_TRUE(schema.valid({{"fields", {"user_id"}}, {"key_file", "k"}, {"encoding", "base64"}, {"keep_prefix", 2}}));
  EXPECT_FALSE(schema.valid({{"fields", {"user_id"}}}));
  EXPECT_FALSE(schema.valid({{"fields", nlohmann::json::array()}, {"key_file", "k"}}));
  EXPECT_FALSE(schema.valid({{"fields", {"a"}}, {"key_file", "k"}, {"encoding", "md5"}}));
  EXPECT_FALSE(schema.valid({{"fields", {"a"}}, {"key_file", "k"}, {"keep_prefix", -1}}));
  EXPECT_FALSE(schema.valid({{"fields", {"a"}}, {"key_file", "k"}, {"key", "inline secrets are not taken"}}));
}

}  // namespace
}  // namespace eventflow::plugins
