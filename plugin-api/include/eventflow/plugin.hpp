#pragma once
/// EventFlow plugin SDK: the only header a plugin includes.
///
/// A plugin is a shared library that exports one `extern "C"` function,
/// `eventflow_plugin_descriptor`, returning a constant descriptor. The host
/// reads that descriptor before calling any C++ code in the library and refuses
/// the library when its ABI tags differ from the host's. Declare a plugin with
/// `EVENTFLOW_PLUGIN(...)` at the bottom of its source file; never write the
/// descriptor by hand.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <exception>
#include <new>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include <eventflow/sdk_hash.hpp>

/// ABI version of this header. The host loads plugins with the same major and
/// a minor not newer than its own. Which changes are which:
///
/// Minor (old plugins keep loading; a plugin built with the new SDK is
/// refused by an older host):
///  - appending a field at the end of EventflowPluginDescriptor: the host
///    reads a field only when the plugin's `struct_size` covers it;
///  - appending a virtual function at the end of Context: the host implements
///    Context, so an old plugin's calls land in the slots they always did;
///  - adding a type, constant, Kind value or inline helper that changes no
///    existing type's layout.
/// Major (every plugin must be rebuilt):
///  - moving, resizing or removing a descriptor field; `abi_major`,
///    `abi_minor` and `struct_size` never move at all, so any host can read
///    any plugin's version and size;
///  - changing Event, Result, LogLevel, or an existing Kind value;
///  - adding, removing, reordering or changing a virtual function of
///    Validator, Enricher or Sink (the plugin implements those: the host would
///    call a slot an old plugin's vtable does not have), or changing an
///    existing one of Context;
///  - changing the create/destroy signatures.
/// Every change to a hashed header needs one of the two bumps, even a comment:
/// EVENTFLOW_SDK_HEADER_HASH (generated from the headers at build time) goes
/// into the descriptor, and the host refuses a plugin whose hash is not the
/// one recorded for its version in plugin-api/abi_hash.txt. time.hpp and
/// testing.hpp are not hashed: their inline helpers are compiled into host and
/// plugin separately and nothing of them crosses the boundary.
#define EVENTFLOW_PLUGIN_ABI_MAJOR 2
#define EVENTFLOW_PLUGIN_ABI_MINOR 0

#define EVENTFLOW_STRINGIFY_DETAIL(x) #x
#define EVENTFLOW_STRINGIFY(x) EVENTFLOW_STRINGIFY_DETAIL(x)

/// The C++ standard library ABI this translation unit is built against. The
/// host refuses a plugin whose tag differs (e.g. one built with
/// -D_GLIBCXX_USE_CXX11_ABI=0), since std::string would not match.
#if defined(_GLIBCXX_USE_CXX11_ABI)
#define EVENTFLOW_CXX_ABI_TAG "libstdc++/cxx11abi=" EVENTFLOW_STRINGIFY(_GLIBCXX_USE_CXX11_ABI)
#elif defined(_LIBCPP_ABI_VERSION)
#define EVENTFLOW_CXX_ABI_TAG "libc++/abi=" EVENTFLOW_STRINGIFY(_LIBCPP_ABI_VERSION)
#else
#define EVENTFLOW_CXX_ABI_TAG "unknown"
#endif

#if defined(JSON_DIAGNOSTICS) && JSON_DIAGNOSTICS
#define EVENTFLOW_JSON_DIAG "1"
#else
#define EVENTFLOW_JSON_DIAG "0"
#endif

/// The nlohmann::json layout this translation unit is built against.
#define EVENTFLOW_JSON_ABI_TAG                                        \
  "nlohmann-json/" EVENTFLOW_STRINGIFY(NLOHMANN_JSON_VERSION_MAJOR) "." \
      EVENTFLOW_STRINGIFY(NLOHMANN_JSON_VERSION_MINOR) "/diagnostics=" EVENTFLOW_JSON_DIAG

namespace eventflow {

/// One event as a plugin sees it. The host owns it; a plugin may change `body`
/// (enrichers do) but must not keep pointers to it after the call returns.
struct Event {
  std::string id;              ///< event_id (UUID).
  std::string type;            ///< event_type.
  std::string correlation_id;  ///< from X-Correlation-ID or the document.
  std::string pipeline;        ///< the pipeline running it.
  std::uint32_t attempt = 1;   ///< 1 on first delivery, +1 per retry.
  std::chrono::system_clock::time_point received_at{};  ///< when ingest accepted it.
  nlohmann::json body;         ///< the whole event document, mutable in place.
};

/// The error_type values the host gives a meaning to, shown in the DLQ and as
/// the `error_type` label of eventflow_events_failed_total. A plugin may use
/// any other string as well.
namespace error_type {
/// The event breaks a rule (validators): dead at once, logged at debug, since
/// refusing bad input is the validator doing its job, not a fault.
inline constexpr char kValidation[] = "validation";
/// Result::reject without a type.
inline constexpr char kRejected[] = "rejected";
/// Result::retry without a type.
inline constexpr char kTransient[] = "transient";
/// The plugin threw: counted as a retry.
inline constexpr char kPluginException[] = "plugin_exception";
/// A sink returned fewer results than events: each missing one is a retry.
inline constexpr char kSinkProtocol[] = "sink_protocol";
/// Delivered max_deliveries times without finishing (it crashed the worker):
/// dead without running the chain again.
inline constexpr char kPoison[] = "poison";
/// No pipeline takes the event's type any more (after a restart or on replay).
inline constexpr char kNoPipeline[] = "no_pipeline";
}  // namespace error_type

/// What a stage says about one event.
class Result {
 public:
  enum class Status : std::uint8_t { ok, reject, retry };

  /// The event passes this stage.
  static Result ok() { return Result(Status::ok, {}, {}); }
  /// Permanent failure: the event goes to the dead-letter queue, never retried.
  static Result reject(std::string reason, std::string error_type = error_type::kRejected) {
    return Result(Status::reject, std::move(reason), std::move(error_type));
  }
  /// Transient failure: the host retries the event later with backoff.
  static Result retry(std::string reason, std::string error_type = error_type::kTransient) {
    return Result(Status::retry, std::move(reason), std::move(error_type));
  }

  Status status() const { return status_; }
  bool isOk() const { return status_ == Status::ok; }
  const std::string& reason() const { return reason_; }
  const std::string& errorType() const { return error_type_; }

 private:
  Result(Status status, std::string reason, std::string error_type)
      : status_(status), reason_(std::move(reason)), error_type_(std::move(error_type)) {}

  Status status_;
  std::string reason_;
  std::string error_type_;
};

enum class LogLevel : std::uint8_t { debug, info, warn, error };

/// What the host offers a plugin instance. Owned by the host; valid for the
/// whole life of the instance. Calls are cheap and never throw.
class Context {
 public:
  virtual ~Context() = default;
  /// Writes one structured log line tagged with the plugin and pipeline.
  virtual void log(LogLevel level, std::string_view message) = 0;
  /// Adds `value` to counter `eventflow_plugin_<name>_total{plugin,pipeline}`.
  virtual void count(std::string_view name, double value = 1.0) = 0;
  /// Records `value` in histogram `eventflow_plugin_<name>{plugin,pipeline}`.
  virtual void observe(std::string_view name, double value) = 0;
  /// Makes a path from the stage config absolute, relative to the folder of
  /// the pipeline file that configured the stage.
  virtual std::string resolvePath(std::string_view path) const = 0;
  /// A host setting by key ("store.url", "host.name"); empty when unknown.
  virtual std::string setting(std::string_view key) const = 0;
};

/// Checks an event; never modifies it. One instance per worker thread: an
/// instance is never called concurrently.
class Validator {
 public:
  virtual ~Validator() = default;
  virtual Result check(const Event& event) = 0;
};

/// Adds to or rewrites the event body in place.
class Enricher {
 public:
  virtual ~Enricher() = default;
  virtual Result enrich(Event& event) = 0;
};

/// Delivers events somewhere. `write` returns exactly one Result per event, in
/// order; a shorter vector counts the missing ones as retry. Events may arrive
/// again after a crash, so writes should be idempotent on `Event::id`.
class Sink {
 public:
  virtual ~Sink() = default;
  virtual std::vector<Result> write(std::span<Event* const> events) = 0;
  /// Makes everything written so far durable; called before the host records
  /// the events as processed.
  virtual Result flush() { return Result::ok(); }
};

enum class Kind : std::uint32_t { validator = 1, enricher = 2, sink = 3 };

inline const char* kindName(Kind kind) {
  switch (kind) {
    case Kind::validator: return "validator";
    case Kind::enricher: return "enricher";
    case Kind::sink: return "sink";
  }
  return "unknown";
}

}  // namespace eventflow

extern "C" {

/// Creates an instance from its config (already checked against
/// `config_schema`). Returns null and writes a message into `error` on
/// failure; never throws.
typedef void* (*eventflow_create_fn)(const nlohmann::json* config, eventflow::Context* context,
                                     char* error, std::size_t error_size);
/// Destroys an instance made by the same library's create.
typedef void (*eventflow_destroy_fn)(void* instance);

/// The descriptor. Its first three fields never move, so any host can read the
/// ABI version and size of any plugin's descriptor before trusting the rest.
/// A minor version only appends fields (after `destroy`).
struct EventflowPluginDescriptor {
  std::uint32_t abi_major;
  std::uint32_t abi_minor;
  std::uint32_t struct_size;  ///< sizeof(EventflowPluginDescriptor) where the plugin was built.
  std::uint32_t kind;         ///< eventflow::Kind, deduced from the plugin's base class.
  const char* sdk_hash;       ///< EVENTFLOW_SDK_HEADER_HASH of the headers the plugin was built with.
  const char* cxx_abi_tag;
  const char* json_abi_tag;
  const char* name;
  const char* version;
  const char* description;
  const char* config_schema;  ///< JSON Schema (draft 7) of the stage config, as text.
  eventflow_create_fn create;
  eventflow_destroy_fn destroy;
};

typedef const EventflowPluginDescriptor* (*eventflow_descriptor_fn)();
}

namespace eventflow {

inline constexpr const char* kDescriptorSymbol = "eventflow_plugin_descriptor";

template <Kind K> struct KindBase;
template <> struct KindBase<Kind::validator> { using type = Validator; };
template <> struct KindBase<Kind::enricher> { using type = Enricher; };
template <> struct KindBase<Kind::sink> { using type = Sink; };

namespace detail {

/// The kind of a plugin class: the one base of Validator, Enricher and Sink it has.
template <class Plugin>
constexpr Kind kindOf() {
  constexpr int bases = int{std::is_base_of_v<Validator, Plugin>} + int{std::is_base_of_v<Enricher, Plugin>} +
                        int{std::is_base_of_v<Sink, Plugin>};
  static_assert(bases == 1, "EVENTFLOW_PLUGIN: the class must derive from exactly one of eventflow::Validator, "
                            "eventflow::Enricher and eventflow::Sink");
  if constexpr (std::is_base_of_v<Validator, Plugin>) return Kind::validator;
  else if constexpr (std::is_base_of_v<Enricher, Plugin>) return Kind::enricher;
  else return Kind::sink;
}

inline void copyError(char* error, std::size_t size, const char* message) {
  if (error == nullptr || size == 0) return;
  std::strncpy(error, message, size - 1);
  error[size - 1] = '\0';
}

template <class Plugin>
void* create(const nlohmann::json* config, Context* context, char* error,
             std::size_t error_size) noexcept {
  using Base = typename KindBase<kindOf<Plugin>()>::type;
  try {
    Base* instance = new Plugin(*config, *context);
    return static_cast<void*>(instance);
  } catch (const std::exception& e) {
    copyError(error, error_size, e.what());
  } catch (...) {
    copyError(error, error_size, "unknown exception");
  }
  return nullptr;
}

template <Kind K>
void destroy(void* instance) noexcept {
  delete static_cast<typename KindBase<K>::type*>(instance);
}

}  // namespace detail
}  // namespace eventflow

/// Declares the plugin implemented by CLASS, which derives from exactly one of
/// eventflow::Validator, Enricher and Sink (that base is its kind) and has a
/// constructor `CLASS(const nlohmann::json& config, eventflow::Context& context)`
/// that may throw to refuse its config. SCHEMA is the JSON Schema of that
/// config (draft 7); the host refuses a plugin whose schema it cannot use.
#define EVENTFLOW_PLUGIN(CLASS, NAME, VERSION, DESCRIPTION, SCHEMA)                                        \
  extern "C" __attribute__((visibility("default"))) const EventflowPluginDescriptor*                       \
  eventflow_plugin_descriptor() {                                                                          \
    static constexpr EventflowPluginDescriptor descriptor{                                                 \
        .abi_major = EVENTFLOW_PLUGIN_ABI_MAJOR,                                                           \
        .abi_minor = EVENTFLOW_PLUGIN_ABI_MINOR,                                                           \
        .struct_size = sizeof(EventflowPluginDescriptor),                                                  \
        .kind = static_cast<std::uint32_t>(::eventflow::detail::kindOf<CLASS>()),                          \
        .sdk_hash = EVENTFLOW_SDK_HEADER_HASH,                                                             \
        .cxx_abi_tag = EVENTFLOW_CXX_ABI_TAG,                                                              \
        .json_abi_tag = EVENTFLOW_JSON_ABI_TAG,                                                            \
        .name = NAME,                                                                                      \
        .version = VERSION,                                                                                \
        .description = DESCRIPTION,                                                                        \
        .config_schema = SCHEMA,                                                                           \
        .create = &::eventflow::detail::create<CLASS>,                                                     \
        .destroy = &::eventflow::detail::destroy<::eventflow::detail::kindOf<CLASS>()>};                   \
    return &descriptor;                                                                                    \
  }
