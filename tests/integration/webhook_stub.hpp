#pragma once
// A webhook for the `http` sink to deliver to in integration tests: a real
// HTTP server on a free loopback port. Each event says how it is answered: its
// body's "fail_times" (N: 503 for its first N deliveries, then 200; -1: 503
// always). Every delivery is recorded, per Idempotency-Key, with the time it
// arrived.

#include <Poco/Net/HTTPRequestHandler.h>
#include <Poco/Net/HTTPRequestHandlerFactory.h>
#include <Poco/Net/HTTPServer.h>
#include <Poco/Net/HTTPServerParams.h>
#include <Poco/Net/HTTPServerRequest.h>
#include <Poco/Net/HTTPServerResponse.h>
#include <Poco/Net/ServerSocket.h>
#include <Poco/StreamCopier.h>

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace eventflow::testing {

class WebhookStub {
 public:
  struct Delivery {
    int status = 0;
    std::chrono::system_clock::time_point at;
  };

  WebhookStub() : socket_(Poco::Net::SocketAddress("127.0.0.1", 0)) {
    auto params = new Poco::Net::HTTPServerParams;
    params->setMaxThreads(8);
    server_ = std::make_unique<Poco::Net::HTTPServer>(new Factory(*this), socket_, params);
    server_->start();
  }
  ~WebhookStub() { server_->stopAll(true); }

  std::string url() const { return "http://127.0.0.1:" + std::to_string(socket_.address().port()) + "/hook"; }

  /// The deliveries of one event, in order of arrival.
  std::vector<Delivery> deliveries(const std::string& event_id) const {
    std::lock_guard lock(mutex_);
    auto it = seen_.find(event_id);
    return it == seen_.end() ? std::vector<Delivery>{} : it->second;
  }

 private:
  int answer(const std::string& key, const std::string& body) {
    const auto doc = nlohmann::json::parse(body, nullptr, false);
    const int fail_times = doc.is_object() ? doc.value("fail_times", 0) : 0;
    std::lock_guard lock(mutex_);
    auto& list = seen_[key];
    const int status = fail_times < 0 || static_cast<int>(list.size()) < fail_times ? 503 : 200;
    list.push_back({status, std::chrono::system_clock::now()});
    return status;
  }

  class Handler final : public Poco::Net::HTTPRequestHandler {
   public:
    explicit Handler(WebhookStub& stub) : stub_(stub) {}
    void handleRequest(Poco::Net::HTTPServerRequest& request, Poco::Net::HTTPServerResponse& response) override {
      std::string body;
      Poco::StreamCopier::copyToString(request.stream(), body);
      const int status = stub_.answer(request.get("Idempotency-Key", ""), body);
      response.setStatusAndReason(static_cast<Poco::Net::HTTPResponse::HTTPStatus>(status));
      response.setContentLength(0);
      response.send();
    }

   private:
    WebhookStub& stub_;
  };

  class Factory final : public Poco::Net::HTTPRequestHandlerFactory {
   public:
    explicit Factory(WebhookStub& stub) : stub_(stub) {}
    Poco::Net::HTTPRequestHandler* createRequestHandler(const Poco::Net::HTTPServerRequest&) override {
      return new Handler(stub_);
    }

   private:
    WebhookStub& stub_;
  };

  Poco::Net::ServerSocket socket_;
  std::unique_ptr<Poco::Net::HTTPServer> server_;
  mutable std::mutex mutex_;
  std::map<std::string, std::vector<Delivery>> seen_;
};

}  // namespace eventflow::testing
