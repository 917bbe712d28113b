#include "queue/redis_connection.hpp"

#include <Poco/Exception.h>
#include <Poco/Net/SocketAddress.h>
#include <Poco/Redis/Exception.h>
#include <sys/socket.h>

#include <algorithm>
#include <climits>

namespace eventflow::queue {

std::vector<Reply> Connection::send(std::string_view wire, std::size_t commands, std::chrono::milliseconds read_timeout) {
  open();
  const Poco::Timespan timeout((read_timeout + std::chrono::seconds(5)).count() * 1000);
  if (timeout != receive_timeout_) {
    socket_.setReceiveTimeout(timeout);
    receive_timeout_ = timeout;
  }
  write(wire);
  if (reader_.drained()) reader_.release();
  std::vector<Reply> replies;
  replies.reserve(commands);
  for (std::size_t i = 0; i < commands; ++i) replies.push_back(reader_.read());
  return replies;
}

Reply Connection::call(const Command& command, std::chrono::milliseconds read_timeout) {
  out_.clear();
  command.appendTo(out_);
  auto reply = std::move(send(out_, 1, read_timeout).front());
  if (reply.isError()) throw Poco::Redis::RedisException(reply.text);
  return reply;
}

void Connection::reset() {
  if (open_) socket_.close();
  open_ = false;
  reader_.clear();
  prepared = false;
}

void Connection::open() {
  if (open_) return;
  socket_ = Poco::Net::StreamSocket();
  socket_.connect(Poco::Net::SocketAddress(host_, static_cast<Poco::UInt16>(port_)), Poco::Timespan(2, 0));
  socket_.setNoDelay(true);
  // A Redis that stops reading must not hold a publisher or a worker
  // forever: the write fails, the connection is dropped, the relay repairs.
  socket_.setSendTimeout(Poco::Timespan(send_timeout_.count() * 1000));
  receive_timeout_ = Poco::Timespan();
  reader_.clear();
  open_ = true;
}

int Connection::receive(char* into, std::size_t room) {
  return socket_.receiveBytes(into, static_cast<int>(std::min<std::size_t>(room, INT_MAX)));
}

void Connection::write(std::string_view wire) {
  while (!wire.empty()) {
    const int n = socket_.sendBytes(wire.data(), static_cast<int>(std::min<std::size_t>(wire.size(), INT_MAX)),
                                    MSG_NOSIGNAL);
    if (n <= 0) throw Poco::IOException("Redis connection: nothing written");
    wire.remove_prefix(static_cast<std::size_t>(n));
  }
}

}  // namespace eventflow::queue
