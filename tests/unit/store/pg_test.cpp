// The libpq layer's pure parts (no server): connection strings as libpq
// parses them, the binary encoders, COPY's text format; and the store's one
// spelling of its states.

#include <gtest/gtest.h>

#include <map>
#include <string>

#include "base/tables.hpp"
#include "base/utf8.hpp"
#include "pg/binary.hpp"
#include "pg/connection.hpp"
#include "pg/copy_text.hpp"
#include "store/state.hpp"

using namespace eventflow;

namespace {

std::map<std::string, std::string> parsed(const std::string& text) {
  auto info = pg::parseConnInfo(text, "store.url");
  EXPECT_TRUE(info) << info.error().message;
  std::map<std::string, std::string> out;
  if (info)
    for (const auto& [key, value] : info->params) out[key] = value;
  return out;
}

}  // namespace

TEST(PgConnInfo, AUrlIsDecodedByLibpqPasswordAndAll) {
  // The password is  a=b c'd\e  percent-encoded: '=' %3D, ' ' %20, '\'' %27, '\\' %5C.
  const auto p = parsed("postgresql://app%20user:a%3Db%20c%27d%5Ce@db.example:6543/events?sslmode=disable");
  EXPECT_EQ(p.at("user"), "app user");
  EXPECT_EQ(p.at("password"), "a=b c'd\\e");
  EXPECT_EQ(p.at("host"), "db.example");
  EXPECT_EQ(p.at("port"), "6543");
  EXPECT_EQ(p.at("dbname"), "events");
  EXPECT_EQ(p.at("sslmode"), "disable");
  EXPECT_EQ(parsed("postgres://h/d").at("dbname"), "d") << "the short scheme too";
}

TEST(PgConnInfo, KeyValueStringsKeepLibpqsQuoting) {
  const auto p = parsed(R"(host=127.0.0.1 dbname=x password='a=b c\'d\\e')");
  EXPECT_EQ(p.at("password"), "a=b c'd\\e");
}

TEST(PgConnInfo, AMalformedUrlIsAnErrorNamingTheKey) {
  for (const std::string bad : {"postgresql://u@h/d?nosuchoption=1", "postgresql://u:%zz@h/d", "host=h oops"}) {
    auto info = pg::parseConnInfo(bad, "store.url");
    ASSERT_FALSE(info) << bad;
    EXPECT_EQ(info.error().message.rfind("store.url ", 0), 0u) << info.error().message;
    EXPECT_GT(info.error().message.size(), std::string("store.url is not a PostgreSQL URL: ").size())
        << "libpq's reason follows: " << info.error().message;
  }
}

TEST(PgConnInfo, DescribeNeverShowsThePassword) {
  auto info = pg::parseConnInfo("postgresql://app:s3cret@db:5433/events", "url");
  ASSERT_TRUE(info);
  EXPECT_EQ(info->describe(), "db:5433/events as app");
}

TEST(PgBinary, UuidBytesTakeEitherCaseAndRefuseTheRest) {
  char out[16];
  ASSERT_TRUE(pg::uuidBytes("0189C0DE-1234-7abc-8def-0123456789AB", out));
  EXPECT_EQ(static_cast<unsigned char>(out[0]), 0x01);
  EXPECT_EQ(static_cast<unsigned char>(out[1]), 0x89);
  EXPECT_EQ(static_cast<unsigned char>(out[2]), 0xc0);
  EXPECT_EQ(static_cast<unsigned char>(out[15]), 0xab);
  EXPECT_FALSE(pg::uuidBytes("0189c0de-1234-7abc-8def-0123456789a", out)) << "short";
  EXPECT_FALSE(pg::uuidBytes("0189c0de+1234-7abc-8def-0123456789ab", out)) << "no hyphen";
  EXPECT_FALSE(pg::uuidBytes("0189c0de-1234-7abc-8def-0123456789ag", out)) << "not hex";
}

TEST(PgBinary, ArraysAndTimesAsTheServerReadsThem) {
  pg::BinaryArray ids(pg::kInt4Oid, 2);
  ids.number(std::int32_t{1});
  ids.number(std::int32_t{-2});
  const std::string bytes = ids.take();
  // ndim 1, no nulls, element oid 23, 2 elements from index 1, then (length, value) pairs.
  const std::string want("\0\0\0\1\0\0\0\0\0\0\0\x17\0\0\0\2\0\0\0\1\0\0\0\4\0\0\0\1\0\0\0\4\xff\xff\xff\xfe", 36);
  EXPECT_EQ(bytes, want);
  EXPECT_EQ(pg::postgresMicros(std::chrono::system_clock::time_point(std::chrono::seconds(946'684'800))), 0);
  EXPECT_EQ(pg::postgresMicros(std::chrono::system_clock::time_point(std::chrono::milliseconds(946'684'800'001))),
            1000);
}

TEST(PgCopyText, ValuesAreEscapedAndBadTextRefused) {
  std::string row;
  EXPECT_TRUE(pg::copy_text::appendRow(row, {"a\tb", std::nullopt, "c\\d\ne\r", "é"}));
  EXPECT_EQ(row, "a\\tb\t\\N\tc\\\\d\\ne\\r\té\n");
  std::string bad;
  EXPECT_FALSE(pg::copy_text::append(bad, std::string("x\0y", 3))) << "a NUL";
  EXPECT_FALSE(pg::copy_text::append(bad, "\xc3\x28")) << "invalid UTF-8";
  EXPECT_FALSE(utf8::valid("\xed\xa0\x80")) << "a surrogate";
  EXPECT_FALSE(utf8::valid("\xc0\xaf")) << "an overlong form";
  EXPECT_TRUE(utf8::valid("\xf4\x8f\xbf\xbf")) << "U+10FFFF";
}

TEST(StoreState, OneSpellingForEveryState) {
  EXPECT_EQ(store::unfinishedStatesSql(), "('received', 'queued', 'processing', 'retrying')");
  EXPECT_EQ(store::terminalStatesSql(), "('done', 'dead', 'discarded')");
  for (const auto s : {store::State::received, store::State::queued, store::State::processing, store::State::retrying,
                       store::State::done, store::State::dead, store::State::discarded})
    EXPECT_EQ(store::parseState(store::toString(s)), s);
  EXPECT_FALSE(store::parseState("finished"));
}

TEST(Tables, ProcessedEventsIsOneTableInBothEngines) {
  const std::string pg = tables::processedEventsDdl(tables::Engine::postgresql);
  EXPECT_EQ(pg,
            "CREATE TABLE IF NOT EXISTS processed_events (event_id uuid PRIMARY KEY, event_type text NOT NULL, "
            "user_id text, timestamp timestamptz, properties jsonb, enriched_data jsonb, pipeline text NOT NULL, "
            "processed_at timestamptz NOT NULL, attempts integer NOT NULL)");
  EXPECT_EQ(tables::processedEventsDdl(tables::Engine::sqlite, "other").rfind("CREATE TABLE IF NOT EXISTS other (", 0),
            0u);
}
