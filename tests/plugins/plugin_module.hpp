#pragma once
// One instance of a built plugin module, made as the host makes it: dlopen,
// the descriptor, create with a config and a Context, destroy. For tests and
// benchmarks of a plugin whose behaviour lives in the module itself.

#include <dlfcn.h>

#include <stdexcept>
#include <string>

#include <eventflow/plugin.hpp>

#include <eventflow/testing.hpp>

namespace eventflow::test {

/// The descriptor of the module at `path`. The module stays loaded for the
/// process's life, as in the host.
inline const EventflowPluginDescriptor& moduleDescriptor(const char* path) {
  void* const handle = ::dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) throw std::runtime_error(::dlerror());
  auto* symbol = reinterpret_cast<eventflow_descriptor_fn>(::dlsym(handle, kDescriptorSymbol));
  if (symbol == nullptr) throw std::runtime_error(std::string("no descriptor in ") + path);
  return *symbol();
}

/// An enricher instance of the module, or the message its create refused with.
class EnricherModule {
 public:
  EnricherModule(const EventflowPluginDescriptor& descriptor, const nlohmann::json& config,
                 std::filesystem::path base = {})
      : descriptor_(descriptor), context_(std::move(base)) {
    char error[1024] = {};
    instance_ = descriptor_.create(&config, &context_, error, sizeof error);
    error_ = error;
  }
  ~EnricherModule() {
    if (instance_ != nullptr) descriptor_.destroy(instance_);
  }
  EnricherModule(const EnricherModule&) = delete;
  EnricherModule& operator=(const EnricherModule&) = delete;

  bool created() const { return instance_ != nullptr; }
  const std::string& error() const { return error_; }
  Result run(Event& event) { return static_cast<Enricher*>(instance_)->enrich(event); }

 private:
  const EventflowPluginDescriptor& descriptor_;
  testing::FakeContext context_;
  void* instance_ = nullptr;
  std::string error_;
};

}  // namespace eventflow::test
