# eventflow_add_plugin(NAME <name> SOURCES <src>... [LINK <targets>...] [OUTPUT_DIR <dir>])
# Builds an EventFlow plugin module <name>.so (target eventflow_plugin_<name>,
# '-' as '_'; also in EVENTFLOW_LAST_PLUGIN_TARGET): hidden visibility, no
# undefined symbols, static dependencies kept private. In-tree plugins use this
# same function. The plugin's kind is not given here: EVENTFLOW_PLUGIN deduces
# it from the class's base (Validator, Enricher or Sink).
function(eventflow_add_plugin)
  cmake_parse_arguments(EF "" "NAME;KIND;OUTPUT_DIR" "SOURCES;LINK" ${ARGN})
  if(DEFINED EF_KIND)
    message(FATAL_ERROR "eventflow_add_plugin(${EF_NAME}): KIND is no longer given (plugin ABI 2.0): "
                        "the kind is deduced from the plugin class's base; drop 'KIND ${EF_KIND}'")
  endif()
  if(NOT EF_NAME OR NOT EF_SOURCES)
    message(FATAL_ERROR "eventflow_add_plugin: NAME and SOURCES are required")
  endif()
  set(target eventflow_plugin_${EF_NAME})
  string(REPLACE "-" "_" target "${target}")
  add_library(${target} MODULE ${EF_SOURCES})
  target_link_libraries(${target} PRIVATE eventflow::plugin-api ${EF_LINK})
  target_compile_features(${target} PRIVATE cxx_std_20)
  set_target_properties(${target} PROPERTIES
    PREFIX ""
    OUTPUT_NAME "${EF_NAME}"
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
