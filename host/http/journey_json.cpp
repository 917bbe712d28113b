#include "http/journey_json.hpp"

namespace eventflow::http {
namespace {

nlohmann::json orNull(const std::optional<std::string>& text) {
  if (!text) return nullptr;
  return *text;
}

// Derived from the columns alone (no history table): failed_events keeps the
// first and the latest failure and how often the event was replayed, so the
// failures in between are summed up by the replay count.
void addHistory(nlohmann::json& journey) {
  if (!journey.is_object()) return;
  nlohmann::json h = nlohmann::json::array();
  h.push_back({{"event", "received"}, {"at", journey.value("received_at", nlohmann::json())}});
  const std::string state = journey.value("state", "");
  if (journey.contains("dead_letter")) {
    const nlohmann::json& dl = journey["dead_letter"];
    auto d = [&](const char* key) { return dl.contains(key) ? dl[key] : nlohmann::json(); };
    const int replays = dl.value("replay_count", 0);
    auto failure = [&](const nlohmann::json& at, bool latest) {
      nlohmann::json f{{"event", "dead_lettered"}, {"at", at}};
      if (latest) {
        f["error_type"] = d("error_type");
        f["error_message"] = d("error_message");
        f["stage"] = d("stage");
        f["plugin"] = d("plugin");
        f["attempts"] = d("attempts");
      }
      return f;
    };
    nlohmann::json replayed{{"event", "replayed"}, {"times", replays}};
    // A replay moves the event out of 'dead': if it is dead now, its last
    // replay came before its latest failure, otherwise after it.
    if (replays == 0) {
      h.push_back(failure(d("failed_at"), true));
    } else if (state == "dead") {
      h.push_back(failure(d("first_failed_at"), false));
      h.push_back(replayed);
      h.push_back(failure(d("failed_at"), true));
    } else {
      if (d("first_failed_at") != d("failed_at")) h.push_back(failure(d("first_failed_at"), false));
      h.push_back(failure(d("failed_at"), true));
      h.push_back(replayed);
    }
  }
  if (state == "done") {
    const auto processed_at = journey.contains("processed") ? journey["processed"].value("processed_at", nlohmann::json())
                                                        : journey["updated_at"];
    h.push_back({{"event", "processed"}, {"at", processed_at}, {"attempts", journey["attempts"]}});
  } else if (state == "discarded") {
    h.push_back({{"event", "discarded"}, {"at", journey["updated_at"]}});
  } else if (state != "dead") {
    h.push_back({{"event", state}, {"at", journey["updated_at"]}, {"attempts", journey["attempts"]}});
  }
  journey["history"] = std::move(h);
}


}  // namespace

nlohmann::json journeyJson(const store::Journey& journey) {
  nlohmann::json j{{"event_id", journey.event_id},
                   {"event_type", journey.event_type},
                   {"pipeline", journey.pipeline},
                   {"state", store::toString(journey.state)},
                   {"attempts", journey.attempts},
                   {"received_at", journey.received_at},
                   {"updated_at", journey.updated_at},
                   {"last_error", orNull(journey.last_error)},
                   {"correlation_id", orNull(journey.correlation_id)}};
  j["event"] = nlohmann::json::parse(journey.payload, nullptr, false);
  if (const auto& dl = journey.dead_letter)
    j["dead_letter"] = {{"error_type", orNull(dl->error_type)},
                        {"error_message", orNull(dl->error_message)},
                        {"stage", orNull(dl->stage)},
                        {"plugin", orNull(dl->plugin)},
                        {"attempts", dl->attempts},
                        {"first_failed_at", dl->first_failed_at},
                        {"failed_at", dl->failed_at},
                        {"replay_count", dl->replay_count}};
  if (const auto& p = journey.processed)
    j["processed"] = {{"processed_at", p->processed_at},
                      {"enriched_data", nlohmann::json::parse(p->enriched_data.value_or("null"), nullptr, false)}};
  addHistory(j);
  return j;
}

}  // namespace eventflow::http
