// eventflow reload: asks the running host to reload (POST /admin/reload), as
// `eventflow dlq replay` reaches it: at server.listen from the config, or at
// --url, with an admin key from --api-key or $EVENTFLOW_API_KEY.

#include <Poco/Exception.h>
#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/URI.h>

#include <cstdlib>
#include <iostream>
#include <iterator>

#include <nlohmann/json.hpp>

#include "app/app.hpp"
#include "app/args.hpp"
#include "app/cli.hpp"
#include "config/config.hpp"

namespace eventflow::app {
namespace {

const char* const kHelp = R"(usage: eventflow reload [--config FILE] [--url URL] [--api-key KEY] [--json]

Asks the running host to re-read its host file and every pipeline file
(POST /admin/reload; SIGHUP does the same). The host builds the new set off
to the side and swaps it in only if all of it is valid; otherwise nothing
changes and every problem is printed with its file:line:col.

--url URL      the host to ask (http://HOST:PORT); default: server.listen in the config
--api-key KEY  a key with the admin scope when server.api_keys is set (default $EVENTFLOW_API_KEY)
--json         print the host's answer as JSON

Prints what changed: pipelines added, removed, changed (and which stages),
plugins loaded and unloading, and settings that need a restart.
A host serving TLS is reloaded with SIGHUP (systemctl reload eventflow).

--config defaults to $EVENTFLOW_CONFIG, else /etc/eventflow/eventflow.yaml.
exit codes: 0 reloaded (or nothing to change), 1 refused or host unreachable, 2 usage error.
)";

std::string names(const nlohmann::json& list) {
  std::string out;
  for (const auto& n : list) out += (out.empty() ? "" : ", ") + (n.is_string() ? n.get<std::string>() : n.value("name", ""));
  return out.empty() ? "-" : out;
}

void printReport(const nlohmann::json& r) {
  std::cout << r.value("status", "") << ": generation " << r.value("generation", 0) << "\n";
  const auto& p = r.value("pipelines", nlohmann::json::object());
  std::cout << "  pipelines added:     " << names(p.value("added", nlohmann::json::array())) << "\n"
            << "  pipelines removed:   " << names(p.value("removed", nlohmann::json::array())) << "\n"
            << "  pipelines unchanged: " << names(p.value("unchanged", nlohmann::json::array())) << "\n";
  for (const auto& c : p.value("changed", nlohmann::json::array())) {
    std::cout << "  pipeline changed:    " << c.value("name", "") << "\n";
    for (const auto& s : c.value("stages", nlohmann::json::array()))
      std::cout << "    stage " << s.value("index", 0) << " (" << s.value("stage", "") << "): " << s.value("change", "")
                << (s.contains("to_version") ? " " + s.value("from_version", "") + " -> " + s.value("to_version", "") : "")
                << "\n";
  }
  const auto& pl = r.value("plugins", nlohmann::json::object());
  for (const auto& l : pl.value("loaded", nlohmann::json::array()))
    std::cout << "  plugin loaded:       " << l.value("name", "") << " " << l.value("version", "") << " ("
              << l.value("file", "") << ")\n";
  for (const auto& l : pl.value("unloading", nlohmann::json::array()))
    std::cout << "  plugin unloading:    " << l.value("name", "") << " " << l.value("version", "")
              << " (once its last instance is gone)\n";
  if (!r.value("applied", nlohmann::json::array()).empty())
    std::cout << "  settings applied:    " << names(r["applied"]) << "\n";
  if (!r.value("needs_restart", nlohmann::json::array()).empty())
    std::cout << "  needs restart:       " << names(r["needs_restart"]) << " (changed, not applied)\n";
}

}  // namespace

int reloadCommand(int argc, char** argv) {
  Args args(argc, argv, 2, {"help", "json"});
  const std::set<std::string> known{"config", "url", "api-key", "json", "help"};
  if (auto extra = args.unknown(known); !extra.empty()) return usageError(unknownOption(extra.front(), known), kHelp);
  if (!args.ok()) return usageError(args.error(), kHelp);
  if (auto extra = args.extraWords(0); !extra.empty()) return usageError(extra, kHelp);
  if (args.has("help")) {
    std::cout << kHelp;
    return 0;
  }
  std::string host, port;
  if (args.has("url")) {
    Poco::URI uri;
    try {
      uri = Poco::URI(args.get("url"));
    } catch (const Poco::Exception& e) {
      return usageError("--url is not a URL: " + e.displayText(), kHelp);
    }
    if (uri.getScheme() != "http" || uri.getHost().empty())
      return usageError("--url must be http://HOST:PORT, not '" + args.get("url") + "' (a TLS host: use SIGHUP)", kHelp);
    host = uri.getHost();
    port = std::to_string(uri.getPort());
  } else {
    auto cfg = config::loadHostConfig(configPath(args));
    if (!cfg)
      return fail("cannot read the config to find the host (pass --url http://HOST:PORT): " + cfg.error().message);
    if (!cfg->server.tls.cert_file.empty())
      return fail("the host serves TLS (server.tls); reload it with SIGHUP (systemctl reload eventflow)");
    const std::string& listen = cfg->server.listen;
    host = listen.substr(0, listen.rfind(':'));
    port = listen.substr(listen.rfind(':') + 1);
    if (host.size() > 1 && host.front() == '[') host = host.substr(1, host.size() - 2);
    if (host.empty() || host == "0.0.0.0" || host == "::") host = "127.0.0.1";
    if (port == "0") return fail("server.listen is " + listen + ": the running host's port is not known; pass --url");
  }
  const auto key = apiKey(args, true);
  if (!key) return usageError(key.error().message, kHelp);
  const std::string where = host + ":" + port;
  try {
    Poco::Net::HTTPClientSession session(host, static_cast<Poco::UInt16>(std::stoi(port)));
    // Loading plugins and creating stages may take a while on a busy host.
    session.setTimeout(Poco::Timespan(10, 0), Poco::Timespan(10, 0), Poco::Timespan(120, 0));
    Poco::Net::HTTPRequest req(Poco::Net::HTTPRequest::HTTP_POST, "/admin/reload", Poco::Net::HTTPMessage::HTTP_1_1);
    req.setContentLength(0);
    if (!key->empty()) req.set("Authorization", "Bearer " + *key);
    session.sendRequest(req);
    Poco::Net::HTTPResponse res;
    const std::string answer(std::istreambuf_iterator<char>(session.receiveResponse(res)), {});
    const auto j = nlohmann::json::parse(answer, nullptr, false);
    const int status = res.getStatus();
    if (args.has("json")) std::cout << (j.is_discarded() ? answer : j.dump(2)) << "\n";
    if (status == 200) {
      if (!args.has("json")) printReport(j);
      return 0;
    }
    std::string message = j.is_object() && j.contains("error") ? j["error"].value("message", answer) : answer;
    if (status == 422 && j.is_object() && j.contains("error")) {
      message = "the host refused the new configuration; nothing changed:";
      for (const auto& p : j["error"].value("problems", nlohmann::json::array())) message += "\n  " + p.get<std::string>();
    }
    if (status == 401 || status == 403) message += " (pass an admin key with --api-key KEY or $EVENTFLOW_API_KEY)";
    return fail("the host at " + where + " answered " + std::to_string(status) + ": " + message);
  } catch (const Poco::Exception& e) {
    return fail("cannot reach the running host at " + where + ": " + e.displayText());
  } catch (const std::exception& e) {
    return fail("cannot reach the running host at " + where + ": " + e.what());
  }
}

}  // namespace eventflow::app
