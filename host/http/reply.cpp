#include "http/reply.hpp"

#include <cctype>

namespace eventflow::http {

nlohmann::json errorBody(const std::string& code, const std::string& message, const std::string& field) {
  nlohmann::json e{{"code", code}, {"message", message}};
  if (!field.empty()) e["field"] = field;
  return {{"error", std::move(e)}};
}

Reply text(int status, std::string body, std::string content_type) {
  Reply r;
  r.status = status;
  r.body = std::move(body);
  r.content_type = std::move(content_type);
  return r;
}

Reply json(int status, const nlohmann::json& body) {
  return text(status, body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
}

Reply error(int status, const std::string& code, const std::string& message, const std::string& field) {
  return json(status, errorBody(code, message, field));
}

Reply unavailable(const std::string& why) {
  Reply r = error(503, "store_unavailable", why);
  r.retry_after = "1";
  return r;
}

bool hasMediaType(const std::string& content_type, std::string_view wanted) {
  const auto semi = content_type.find(';');
  std::string base = content_type.substr(0, semi);
  while (!base.empty() && base.back() == ' ') base.pop_back();
  for (auto& c : base) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return base == wanted;
}

std::string_view pathOf(const Request& req) {
  const std::string_view target(req.target().data(), req.target().size());
  return target.substr(0, target.find('?'));
}

}  // namespace eventflow::http
