// Sets one field of the event body, so the test can find its mark in
// processed_events.enriched_data.

#include <string>

#include <eventflow/plugin.hpp>

namespace {

class Stamp final : public eventflow::Enricher {
 public:
  Stamp(const nlohmann::json& config, eventflow::Context&)
      : field_(config.value("field", "stamped_by")), value_(config.value("value", "sample-plugin")) {}

  eventflow::Result enrich(eventflow::Event& event) override {
    event.body[field_] = value_;
    return eventflow::Result::ok();
  }

 private:
  std::string field_;
  std::string value_;
};

}  // namespace

EVENTFLOW_PLUGIN(Stamp, "stamp", "1.0.0", "Sets a configured field of the body to a configured string.",
                 R"({"type":"object","properties":{"field":{"type":"string"},"value":{"type":"string"}},
                     "additionalProperties":false})")
