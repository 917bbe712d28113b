#include "store/store.hpp"

namespace eventflow::store {

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

}  // namespace eventflow::store
