#pragma once
// One connection to Redis speaking RESP2 (resp.hpp) over a plain Poco
// StreamSocket with TCP_NODELAY: with Nagle on (Poco 1.11's client leaves it
// on), a pipelined call, several writes then a read, stalls ~40 ms on delayed
// ACK.

#include <Poco/Net/StreamSocket.h>
#include <Poco/Timespan.h>

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "queue/resp.hpp"

namespace eventflow::queue {

class Connection {
 public:
  Connection(std::string host, int port, std::chrono::milliseconds send_timeout)
      : host_(std::move(host)), port_(port), send_timeout_(send_timeout) {}

  /// Writes `wire`, `commands` encoded commands, in one send and reads one
  /// reply each. Throws Poco::Exception when the connection fails or Redis
  /// breaks the protocol; error replies are returned.
  std::vector<Reply> send(std::string_view wire, std::size_t commands, std::chrono::milliseconds read_timeout);

  /// One command; an error reply is thrown as RedisException.
  Reply call(const Command& command, std::chrono::milliseconds read_timeout = std::chrono::seconds(1));

  void reset();

  bool prepared = false;  // the consumer group exists as far as this connection knows

 private:
  void open();
  void write(std::string_view wire);
  int receive(char* into, std::size_t room);

  std::string host_;
  int port_;
  std::chrono::milliseconds send_timeout_;
  Poco::Net::StreamSocket socket_;
  Poco::Timespan receive_timeout_;
  std::string out_;  // call()'s encoded command, kept for its capacity
  RespReader reader_{[this](char* into, std::size_t room) { return receive(into, room); }};
  bool open_ = false;
};

}  // namespace eventflow::queue
