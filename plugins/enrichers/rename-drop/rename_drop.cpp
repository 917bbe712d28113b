#include "rename_drop.hpp"

#include <algorithm>
#include <stdexcept>
#include <utility>

namespace eventflow::plugins {
namespace {

// The host keys an event by these (idempotency, routing, the processed row),
// so a body without them would disagree with its own record.
void refuseEnvelopeKey(const FieldPath& path, const std::string& name, const char* what) {
  if (path.size() == 1 && (path[0] == "event_id" || path[0] == "event_type"))
    throw std::invalid_argument(std::string("rename-drop: ") + what + " '" + name +
                                "' is not allowed: the host identifies and routes the event by it");
}

}  // namespace

RenameDropEnricher::RenameDropEnricher(const nlohmann::json& config, Context&) {
  if (!config.is_object()) throw std::invalid_argument("rename-drop: config must be an object");
  const auto rename = config.find("rename");
  const auto drop = config.find("drop");
  if (rename == config.end() && drop == config.end())
    throw std::invalid_argument("rename-drop: give 'rename' ({from: to}), 'drop' ([paths]) or both");
  if (rename != config.end()) {
    if (!rename->is_object() || rename->empty())
      throw std::invalid_argument("rename-drop: rename must be a non-empty object of from: to dotted paths");
    for (const auto& [from, to] : rename->items()) {
      if (!to.is_string())
        throw std::invalid_argument("rename-drop: rename '" + from + "' must name a target path, not " + to.dump());
      Rename r{from, to.get<std::string>(), parseFieldPath(from, "rename-drop: rename"),
                parseFieldPath(to.get<std::string>(), "rename-drop: rename")};
      refuseEnvelopeKey(r.from, from, "renaming");
      refuseEnvelopeKey(r.to, r.to_name, "renaming onto");
      if (r.from == r.to) throw std::invalid_argument("rename-drop: rename '" + from + "' names itself as target");
      renames_.push_back(std::move(r));
    }
    // Renames run in key order, so {a: b, b: c} would depend on that order,
    // and two sources onto one target on which one the event carries.
    for (const auto& r : renames_)
      for (const auto& other : renames_) {
        if (&r == &other) continue;
        if (r.to == other.from)
          throw std::invalid_argument("rename-drop: rename '" + r.from_name + "' targets '" + r.to_name +
                                      "', which is itself renamed; rename '" + r.from_name + "' to '" +
                                      other.to_name + "' directly");
        if (r.to == other.to && r.from_name < other.from_name)
          throw std::invalid_argument("rename-drop: renames '" + r.from_name + "' and '" + other.from_name +
                                      "' both target '" + r.to_name + "'");
      }
  }
  if (drop != config.end()) {
    drops_ = parseFieldPaths(*drop, "rename-drop: drop");
    for (std::size_t i = 0; i < drops_.size(); ++i) {
      const std::string& name = (*drop)[i].get_ref<const std::string&>();
      refuseEnvelopeKey(drops_[i], name, "dropping");
      if (std::any_of(renames_.begin(), renames_.end(), [&](const Rename& r) { return r.to == drops_[i]; }))
        throw std::invalid_argument("rename-drop: '" + name + "' is both a rename target and dropped");
    }
  }
}

Result RenameDropEnricher::enrich(Event& event) {
  for (const auto& r : renames_) {
    nlohmann::json* found = findField(event.body, r.from);
    if (found == nullptr) continue;
    // Taken out first, so a target inside the source ("user" to "user.name")
    // finds its parent free to become an object.
    nlohmann::json value = std::move(*found);
    eraseField(event.body, r.from);
    nlohmann::json* slot = makeField(event.body, r.to);
    if (slot == nullptr) {
      if (nlohmann::json* back = makeField(event.body, r.from)) *back = std::move(value);
      return Result::reject("rename-drop: cannot rename '" + r.from_name + "' to '" + r.to_name +
                                "': a parent of the target is not an object",
                            "enrichment");
    }
    *slot = std::move(value);
  }
  for (const auto& path : drops_) eraseField(event.body, path);
  return Result::ok();
}

}  // namespace eventflow::plugins
