# The plugin seam against a real host and the plugin commands of the binary.
# Kept apart from CMakeLists.txt, which the store and queue tests share.

# Fixture plugins for the runtime-safety test, built like any plugin.
set(integration_fixtures ${CMAKE_CURRENT_BINARY_DIR}/fixtures)
eventflow_add_plugin(NAME concurrency-probe SOURCES fixtures/concurrency_probe.cpp
                     OUTPUT_DIR ${integration_fixtures})
target_link_libraries(${EVENTFLOW_LAST_PLUGIN_TARGET} PRIVATE eventflow_warnings)
eventflow_add_plugin(NAME explode SOURCES fixtures/explode.cpp OUTPUT_DIR ${integration_fixtures})
target_link_libraries(${EVENTFLOW_LAST_PLUGIN_TARGET} PRIVATE eventflow_warnings)
eventflow_add_plugin(NAME batch-probe SOURCES fixtures/batch_probe.cpp OUTPUT_DIR ${integration_fixtures})
target_link_libraries(${EVENTFLOW_LAST_PLUGIN_TARGET} PRIVATE eventflow_warnings)

add_executable(eventflow_plugin_integration_tests plugin_runtime_test.cpp cli_test.cpp)
target_link_libraries(eventflow_plugin_integration_tests PRIVATE eventflow::plugin-api Poco::Net Poco::Data
                      Poco::DataSQLite GTest::gtest_main Threads::Threads eventflow_warnings)
target_compile_definitions(eventflow_plugin_integration_tests PRIVATE
  EVENTFLOW_BINARY="$<TARGET_FILE:eventflow>"
  EVENTFLOW_PLUGIN_DIR="${EVENTFLOW_PLUGIN_OUTPUT_DIR}"
  EVENTFLOW_FIXTURE_PLUGIN_DIR="${integration_fixtures}"
  EVENTFLOW_PIPELINES_DIR="${PROJECT_SOURCE_DIR}/pipelines")
add_dependencies(eventflow_plugin_integration_tests eventflow eventflow_plugin_concurrency_probe eventflow_plugin_batch_probe
                 eventflow_plugin_explode eventflow_plugin_required_fields
                 eventflow_plugin_add_fields eventflow_plugin_sqlite eventflow_plugin_json_schema
                 eventflow_plugin_time_window eventflow_plugin_classify eventflow_plugin_postgres
                 eventflow_plugin_http eventflow_plugin_lua eventflow_plugin_rename_drop eventflow_plugin_hash_fields
                 eventflow_plugin_lookup eventflow_plugin_file eventflow_plugin_stdout eventflow_plugin_redis_stream)
gtest_discover_tests(eventflow_plugin_integration_tests PROPERTIES LABELS integration DISCOVERY_TIMEOUT 30)
