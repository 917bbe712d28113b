#pragma once
// A raw-socket HTTP client for tests that must send bytes an ordinary client
// would not (smuggled requests, odd framing) or read exactly what came back.

#include <Poco/Net/NetException.h>
#include <Poco/Net/StreamSocket.h>

#include <algorithm>
#include <cctype>
#include <map>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

namespace eventflow::testing {

struct Response {
  int status = 0;  // 0: the connection ended before a whole response
  std::string version;
  std::map<std::string, std::string> headers;  // names in lower case
  std::string body;
  bool has(const std::string& name) const { return headers.count(name) > 0; }
  std::string header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? std::string() : it->second;
  }
  nlohmann::json json() const { return nlohmann::json::parse(body, nullptr, false); }
};

/// Reads one response from `buffer`, calling `fill` (which appends what
/// arrives, false once the connection ended) until it is whole. Shared by the
/// plain and the TLS test clients.
template <class Fill>
Response readResponse(std::string& buffer, Fill fill, bool answers_head = false) {
  Response r;
  std::size_t head_end;
  while ((head_end = buffer.find("\r\n\r\n")) == std::string::npos)
    if (!fill()) return r;
  std::istringstream head(buffer.substr(0, head_end));
  buffer.erase(0, head_end + 4);
  std::string line;
  std::getline(head, line);
  std::istringstream status_line(line);
  status_line >> r.version >> r.status;
  while (std::getline(head, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    const auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string name = line.substr(0, colon);
    std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
    std::string value = line.substr(colon + 1);
    value.erase(0, value.find_first_not_of(' '));
    r.headers[name] = value;
  }
  if ((r.status >= 100 && r.status < 200) || answers_head) return r;
  const std::size_t length = r.has("content-length") ? std::stoul(r.header("content-length")) : 0;
  while (buffer.size() < length)
    if (!fill()) {
      r.status = 0;
      return r;
    }
  r.body = buffer.substr(0, length);
  buffer.erase(0, length);
  return r;
}

// One client connection, read and written byte by byte as the test says.
class Connection {
 public:
  explicit Connection(std::uint16_t port) : socket_(Poco::Net::SocketAddress("127.0.0.1", port)) {
    socket_.setReceiveTimeout(Poco::Timespan(10, 0));
    socket_.setNoDelay(true);
  }

  /// False once the server has refused more (reset or closed).
  bool send(const std::string& data) {
    try {
      std::size_t sent = 0;
      while (sent < data.size()) {
        const int n = socket_.sendBytes(data.data() + sent, static_cast<int>(data.size() - sent));
        if (n <= 0) return false;
        sent += static_cast<std::size_t>(n);
      }
      return true;
    } catch (const Poco::Exception&) {
      return false;
    }
  }

  /// The next response (1xx included); status 0 if the connection ended first.
  /// `answers_head`: the answer to a HEAD, whose Content-Length has no body behind it.
  Response read(bool answers_head = false) {
    return readResponse(buffer_, [this] { return fill(); }, answers_head);
  }

  enum class End { open, closed, reset, more_data };
  /// How the connection ends within `within`, nothing more being sent.
  End end(Poco::Timespan within = Poco::Timespan(5, 0)) {
    if (!buffer_.empty()) return End::more_data;
    socket_.setReceiveTimeout(within);
    try {
      char c;
      return socket_.receiveBytes(&c, 1) == 0 ? End::closed : End::more_data;
    } catch (const Poco::TimeoutException&) {
      return End::open;
    } catch (const Poco::Exception&) {
      return End::reset;
    }
  }
  /// True if the server closes (or resets) the connection within `within`
  /// without sending anything more.
  bool closedByPeer(Poco::Timespan within = Poco::Timespan(5, 0)) {
    const End e = end(within);
    return e == End::closed || e == End::reset;
  }

  /// Closes with a reset (SO_LINGER 0), as a client that crashes would.
  void abort() {
    socket_.setLinger(true, 0);
    socket_.close();
  }

  Poco::Net::StreamSocket& socket() { return socket_; }

 private:
  bool fill() {
    char chunk[16384];
    try {
      const int n = socket_.receiveBytes(chunk, sizeof chunk);
      if (n <= 0) return false;
      buffer_.append(chunk, static_cast<std::size_t>(n));
      return true;
    } catch (const Poco::Exception&) {
      return false;
    }
  }

  Poco::Net::StreamSocket socket_;
  std::string buffer_;
};

inline std::string post(const std::string& path, const std::string& body, const std::string& extra_headers = {}) {
  return "POST " + path + " HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: " +
         std::to_string(body.size()) + "\r\n" + extra_headers + "\r\n" + body;
}

inline std::string get(const std::string& path, const std::string& extra_headers = {}, const std::string& version = "1.1") {
  return "GET " + path + " HTTP/" + version + "\r\nHost: t\r\n" + extra_headers + "\r\n";
}

}  // namespace eventflow::testing
