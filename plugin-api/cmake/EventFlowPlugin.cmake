# eventflow_add_plugin(NAME <name> KIND <validator|enricher|sink> SOURCES <src>...
#                      [LINK <targets>...] [OUTPUT_DIR <dir>])
# Builds an EventFlow plugin module: hidden visibility, no undefined symbols,
# static dependencies kept private. In-tree plugins use this same function.
function(eventflow_add_plugin)
  cmake_parse_arguments(EF "" "NAME;KIND;OUTPUT_DIR" "SOURCES;LINK" ${ARGN})
  if(NOT EF_NAME OR NOT EF_KIND OR NOT EF_SOURCES)
    message(FATAL_ERROR "eventflow_add_plugin: NAME, KIND and SOURCES are required")
  endif()
  if(NOT EF_KIND MATCHES "^(validator|enricher|sink)$")
    message(FATAL_ERROR "eventflow_add_plugin: KIND must be validator, enricher or sink, not ${EF_KIND}")
  endif()
  set(target eventflow_plugin_${EF_KIND}_${EF_NAME})
  string(REPLACE "-" "_" target "${target}")
  add_library(${target} MODULE ${EF_SOURCES})
  target_link_libraries(${target} PRIVATE eventflow::plugin-api ${EF_LINK})
  target_compile_features(${target} PRIVATE cxx_std_20)
  set_target_properties(${target} PROPERTIES
    PREFIX ""
    OUTPUT_NAME "${EF_KIND}-${EF_NAME}"
    CXX_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON
    POSITION_INDEPENDENT_CODE ON)
  target_link_options(${target} PRIVATE -Wl,--no-undefined -Wl,--exclude-libs,ALL)
  if(EF_OUTPUT_DIR)
    set_target_properties(${target} PROPERTIES LIBRARY_OUTPUT_DIRECTORY ${EF_OUTPUT_DIR})
  elseif(DEFINED EVENTFLOW_PLUGIN_OUTPUT_DIR)
    set_target_properties(${target} PROPERTIES LIBRARY_OUTPUT_DIRECTORY ${EVENTFLOW_PLUGIN_OUTPUT_DIR})
  endif()
  set(EVENTFLOW_LAST_PLUGIN_TARGET ${target} PARENT_SCOPE)
endfunction()
