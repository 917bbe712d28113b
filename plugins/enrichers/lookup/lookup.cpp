#include "lookup.hpp"

#include <stdexcept>

namespace eventflow::plugins {

LookupEnricher::LookupEnricher(const nlohmann::json& config, Context& context) : context_(context) {
  if (!config.is_object()) throw std::invalid_argument("lookup: config must be an object");
  const auto text = [&](const char* key) -> std::string {
    const auto it = config.find(key);
    if (it == config.end()) return {};
    if (!it->is_string() || it->get_ref<const std::string&>().empty())
      throw std::invalid_argument(std::string("lookup: ") + key + " must be a non-empty string, not " + it->dump());
    return it->get<std::string>();
  };
  file_name_ = text("file");
  if (file_name_.empty()) throw std::invalid_argument("lookup: file is required (a .csv or .json file)");
  key_name_ = text("key");
  if (key_name_.empty()) throw std::invalid_argument("lookup: key is required (the dotted path of the event's key)");
  key_ = parseFieldPath(key_name_, "lookup: key");
  if (const std::string into = text("into"); !into.empty()) into_ = parseFieldPath(into, "lookup: into");

  lookup::TableSpec spec;
  spec.path = context.resolvePath(file_name_);
  std::string format = text("format");
  if (format.empty()) format = file_name_.ends_with(".json") ? "json" : file_name_.ends_with(".csv") ? "csv" : "";
  if (format != "csv" && format != "json")
    throw std::invalid_argument("lookup: file " + file_name_ +
                                " ends in neither .csv nor .json; say which it is with format: csv or format: json");
  spec.format = format == "csv" ? lookup::Format::csv : lookup::Format::json;
  spec.key_column = text("key_column");
  if (spec.key_column.empty()) spec.key_column = key_.back();
  const auto fields = config.find("fields");
  if (fields == config.end() || !fields->is_array() || fields->empty())
    throw std::invalid_argument("lookup: fields must be a non-empty list of column names");
  for (const auto& f : *fields) {
    if (!f.is_string() || f.get_ref<const std::string&>().empty())
      throw std::invalid_argument("lookup: fields: " + f.dump() + " is not a column name");
    spec.fields.push_back(f.get<std::string>());
  }

  const std::string on_miss = config.value("on_miss", std::string("skip"));
  if (on_miss == "reject") on_miss_ = OnMiss::reject;
  else if (on_miss == "default") on_miss_ = OnMiss::fill;
  else if (on_miss != "skip")
    throw std::invalid_argument("lookup: on_miss must be skip, reject or default, not \"" + on_miss + "\"");
  if (const auto it = config.find("default"); it != config.end()) {
    if (on_miss_ != OnMiss::fill)
      throw std::invalid_argument("lookup: default is used only with on_miss: default");
    if (!it->is_object() || it->empty()) throw std::invalid_argument("lookup: default must be an object of field: value");
    default_ = *it;
  } else if (on_miss_ == OnMiss::fill) {
    throw std::invalid_argument("lookup: on_miss: default needs default: {field: value, ...}");
  }

  try {
    shared_ = lookup::SharedTable::get(spec);
  } catch (const std::runtime_error& e) {
    throw std::invalid_argument(e.what());
  }
  table_ = shared_->snapshot();
  generation_ = shared_->generation();
}

nlohmann::json* LookupEnricher::target(Event& event) {
  if (into_.empty()) return &event.body;
  nlohmann::json* slot = makeField(event.body, into_);
  if (slot != nullptr && slot->is_null()) *slot = nlohmann::json::object();
  return slot;
}

Result LookupEnricher::miss(Event& event, const std::string& why) {
  context_.count("lookup_misses");
  if (on_miss_ == OnMiss::skip) return Result::ok();
  if (on_miss_ == OnMiss::reject) return Result::reject("lookup: " + why, "lookup_miss");
  nlohmann::json* into = target(event);
  if (into == nullptr || !into->is_object())
    return Result::reject("lookup: cannot set the defaults: the target is not an object", "enrichment");
  for (const auto& [field, value] : default_.items()) (*into)[field] = value;
  return Result::ok();
}

Result LookupEnricher::enrich(Event& event) {
  shared_->poll(context_);
  if (const std::uint64_t generation = shared_->generation(); generation != generation_) {
    table_ = shared_->snapshot();
    generation_ = generation;
  }
  const nlohmann::json* key = findField(event.body, key_);
  if (key == nullptr || key->is_null()) return miss(event, "the event has no " + key_name_);
  std::string text;
  if (key->is_string()) text = key->get<std::string>();
  else if (key->is_number_integer()) text = key->dump();
  else return miss(event, key_name_ + " is " + key->dump() + ", not a string or integer");
  const auto row = table_->find(text);
  if (!row) return miss(event, "no row for " + key_name_ + " " + nlohmann::json(text).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + " in " + file_name_);
  nlohmann::json* into = target(event);
  if (into == nullptr || !into->is_object())
    return Result::reject("lookup: cannot set the fields: the target is not an object", "enrichment");
  const auto& fields = shared_->spec().fields;
  for (std::size_t i = 0; i < fields.size(); ++i) {
    nlohmann::json value = table_->value(*row, i);
    if (!value.is_null()) (*into)[fields[i]] = std::move(value);
  }
  return Result::ok();
}

}  // namespace eventflow::plugins
