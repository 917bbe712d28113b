// RESP2 on canned bytes: the reply parser fed by a fake receive, and the
// command encoder.

#include <gtest/gtest.h>

#include <Poco/Redis/Exception.h>

#include <algorithm>
#include <string>

#include "queue/resp.hpp"

using eventflow::queue::Command;
using eventflow::queue::Reply;
using eventflow::queue::RespReader;

namespace {

// Hands out `bytes` at most `chunk` at a time, then reports a closed peer.
class Feed {
 public:
  Feed(std::string bytes, std::size_t chunk = 1 << 20) : bytes_(std::move(bytes)), chunk_(chunk) {}
  RespReader reader() {
    return RespReader([this](char* into, std::size_t room) -> int {
      const std::size_t n = std::min({room, chunk_, bytes_.size() - at_});
      std::copy_n(bytes_.data() + at_, n, into);
      at_ += n;
      ++calls_;
      return static_cast<int>(n);
    });
  }
  std::size_t calls() const { return calls_; }

 private:
  std::string bytes_;
  std::size_t chunk_;
  std::size_t at_ = 0;
  std::size_t calls_ = 0;
};

Reply parse(const std::string& bytes, std::size_t chunk = 1 << 20) {
  Feed feed(bytes, chunk);
  auto reader = feed.reader();
  return reader.read();
}

std::string protocolError(const std::string& bytes) {
  Feed feed(bytes);
  auto reader = feed.reader();
  try {
    reader.read();
  } catch (const Poco::Redis::RedisException& e) {
    return e.message();
  }
  return "no error";
}

}  // namespace

TEST(Resp, SimpleValuesOfEachKind) {
  EXPECT_EQ(parse("+OK\r\n").text, "OK");
  EXPECT_EQ(parse(":-42\r\n").number, -42);
  const Reply bulk = parse("$5\r\nhe\r\no\r\n");
  EXPECT_EQ(bulk.kind, '$');
  EXPECT_EQ(bulk.text, "he\r\no") << "a bulk string is read by its length, CRLF and all";
  EXPECT_EQ(parse("$0\r\n\r\n").text, "");
  EXPECT_FALSE(parse("$0\r\n\r\n").null);
}

TEST(Resp, AnErrorReplyIsAValueNotAnException) {
  const Reply r = parse("-NOGROUP No such key 'x' or consumer group\r\n");
  EXPECT_TRUE(r.isError());
  EXPECT_EQ(r.text, "NOGROUP No such key 'x' or consumer group");
}

TEST(Resp, NullBulkAndNullArrayAreNull) {
  const Reply bulk = parse("$-1\r\n");
  EXPECT_EQ(bulk.kind, '$');
  EXPECT_TRUE(bulk.null);
  const Reply array = parse("*-1\r\n");
  EXPECT_EQ(array.kind, '*');
  EXPECT_TRUE(array.null);
  Reply copy = array;
  EXPECT_EQ(eventflow::queue::array(copy), nullptr) << "a null array is no array to walk";
}

TEST(Resp, NestedArraysAsXreadgroupAnswers) {
  // [[stream, [[id, [field, value, field, value]]]]], with a null entry.
  const std::string bytes =
      "*1\r\n*2\r\n$4\r\nbeta\r\n*2\r\n*2\r\n$3\r\n1-0\r\n*4\r\n$2\r\nid\r\n$3\r\nabc\r\n$4\r\nsize\r\n:7\r\n"
      "*2\r\n$3\r\n2-0\r\n*-1\r\n";
  Reply r = parse(bytes);
  ASSERT_EQ(r.items.size(), 1u);
  Reply& stream = r.items[0];
  ASSERT_EQ(stream.items.size(), 2u);
  EXPECT_EQ(stream.items[0].text, "beta");
  Reply& entries = stream.items[1];
  ASSERT_EQ(entries.items.size(), 2u);
  EXPECT_EQ(entries.items[0].items[0].text, "1-0");
  const Reply& fields = entries.items[0].items[1];
  ASSERT_EQ(fields.items.size(), 4u);
  EXPECT_EQ(fields.items[1].text, "abc");
  EXPECT_EQ(eventflow::queue::integer(fields.items[3]), 7);
  EXPECT_TRUE(entries.items[1].items[1].null);
}

TEST(Resp, PartialRepliesAreAssembledWhateverTheChunks) {
  const std::string bytes = "*3\r\n$5\r\nhello\r\n:12\r\n*2\r\n+a\r\n$-1\r\n";
  for (std::size_t chunk : {1u, 2u, 3u, 7u, 64u}) {
    SCOPED_TRACE(chunk);
    Feed feed(bytes, chunk);
    auto reader = feed.reader();
    const Reply r = reader.read();
    ASSERT_EQ(r.items.size(), 3u);
    EXPECT_EQ(r.items[0].text, "hello");
    EXPECT_EQ(r.items[1].number, 12);
    EXPECT_EQ(r.items[2].items[0].text, "a");
    EXPECT_TRUE(r.items[2].items[1].null);
    EXPECT_TRUE(reader.drained());
  }
}

TEST(Resp, PipelinedRepliesComeOneReadEach) {
  Feed feed("+OK\r\n:1\r\n$3\r\nxyz\r\n");
  auto reader = feed.reader();
  EXPECT_EQ(reader.read().text, "OK");
  EXPECT_FALSE(reader.drained()) << "what a read brought beyond the reply stays buffered";
  EXPECT_EQ(reader.read().number, 1);
  EXPECT_EQ(reader.read().text, "xyz");
  EXPECT_TRUE(reader.drained());
}

TEST(Resp, HugeLengthsAreRefusedBeforeAnythingIsAllocated) {
  // One past Redis's own 512 MB bulk limit: refused on the header, not read.
  EXPECT_NE(protocolError("$536870913\r\n").find("bad bulk string length"), std::string::npos);
  EXPECT_NE(protocolError("$99999999999999999999\r\n").find("bad number"), std::string::npos);
  EXPECT_NE(protocolError("*2147483648\r\n").find("bad array length"), std::string::npos);
  EXPECT_NE(protocolError("$-2\r\n").find("bad bulk string length"), std::string::npos);
}

TEST(Resp, BrokenBytesAreProtocolErrors) {
  EXPECT_NE(protocolError("?what\r\n").find("unknown reply type"), std::string::npos);
  EXPECT_NE(protocolError("\r\n").find("empty line"), std::string::npos);
  EXPECT_NE(protocolError(":12a\r\n").find("bad number"), std::string::npos);
  EXPECT_NE(protocolError("$3\r\nabcd\r\n").find("without CRLF"), std::string::npos);
  EXPECT_NE(protocolError("$10\r\nshort").find("closed"), std::string::npos) << "a peer that closes mid-reply";
  std::string deep;
  for (int i = 0; i <= RespReader::kMaxDepth; ++i) deep += "*1\r\n";
  EXPECT_NE(protocolError(deep + ":1\r\n").find("nested too deep"), std::string::npos);
  EXPECT_NE(protocolError("+" + std::string(RespReader::kMaxLine + 10, 'x')).find("line too long"), std::string::npos);
}

TEST(Resp, CommandsAreEncodedAsArraysOfBulkStrings) {
  std::string wire;
  Command xadd{"XADD", "s"};
  xadd << "*" << 42LL << std::string_view("a\r\nb");
  xadd.appendTo(wire);
  EXPECT_EQ(wire, "*5\r\n$4\r\nXADD\r\n$1\r\ns\r\n$1\r\n*\r\n$2\r\n42\r\n$4\r\na\r\nb\r\n");
  xadd.clear();
  xadd << "PING";
  wire.clear();
  xadd.appendTo(wire);
  EXPECT_EQ(wire, "*1\r\n$4\r\nPING\r\n") << "clear() starts a new command";
}
