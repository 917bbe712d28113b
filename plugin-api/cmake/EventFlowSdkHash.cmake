# eventflow_sdk_hash(<dir> <out-var>)
# The SDK header hash the plugin gate checks: SHA-256 over "<file> <sha256>\n"
# for every *.hpp in <dir> except the unhashed ones, in name order. File names
# count, so adding, removing or renaming a header changes it too.
#
# Unhashed: time.hpp and testing.hpp hold inline helpers that host and plugin
# (or a plugin's own tests) compile separately; nothing of them crosses the
# plugin boundary, so changing them needs no ABI bump. sdk_hash.hpp is this
# hash itself.
#
# Also a script: cmake -DDIR=<dir> -P EventFlowSdkHash.cmake prints the hash
# (tests/loader checks the rules above with it).
set(EVENTFLOW_SDK_UNHASHED time.hpp testing.hpp sdk_hash.hpp)

function(eventflow_sdk_hash dir out)
  file(GLOB headers LIST_DIRECTORIES false "${dir}/*.hpp")
  list(SORT headers)
  set(listing "")
  foreach(header IN LISTS headers)
    get_filename_component(name "${header}" NAME)
    list(FIND EVENTFLOW_SDK_UNHASHED "${name}" unhashed)
    if(NOT unhashed EQUAL -1)
      continue()
    endif()
    file(SHA256 "${header}" digest)
    string(APPEND listing "${name} ${digest}\n")
  endforeach()
  string(SHA256 hash "${listing}")
  set(${out} ${hash} PARENT_SCOPE)
endfunction()

if(CMAKE_SCRIPT_MODE_FILE AND DEFINED DIR)
  eventflow_sdk_hash("${DIR}" hash)
  message("${hash}")
endif()
