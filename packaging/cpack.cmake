# CPack: eventflow and eventflow-dev as .deb and .rpm (scripts/package runs it).
# Component `runtime` is the package eventflow, component `dev` eventflow-dev.
# Values that depend on the package version (file names, the dev package's
# exact dependency) are set in cpack_options.cmake.in, read when cpack runs,
# so `cpack -D CPACK_PACKAGE_VERSION=…` (EVENTFLOW_PACKAGE_VERSION in
# scripts/package) makes a consistent higher-versioned set from one build.

set(CPACK_GENERATOR "DEB;RPM")
set(CPACK_PACKAGE_NAME eventflow)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_VENDOR "EventFlow")
set(CPACK_PACKAGE_CONTACT "EventFlow maintainers <maintainers@eventflow.invalid>")
set(CPACK_PACKAGE_HOMEPAGE_URL "https://eventflow.invalid/")
set(CPACK_PACKAGE_DIRECTORY ${CMAKE_BINARY_DIR}/packages)
set(CPACK_RESOURCE_FILE_LICENSE ${CMAKE_CURRENT_SOURCE_DIR}/debian/copyright)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
# The install script puts config in /etc only when it sees the prefix /usr
# itself, which CPack shows it only through DESTDIR staging.
set(CPACK_SET_DESTDIR ON)
set(CPACK_INSTALL_PREFIX /usr)
# CPack's own stripping (CPACK_STRIP_FILES) is off: the packaging install in
# packaging/CMakeLists.txt strips the binary and the plugins.
set(CPACK_STRIP_FILES OFF)
set(CPACK_COMPONENTS_ALL runtime dev)
set(CPACK_PROJECT_CONFIG_FILE ${CMAKE_CURRENT_BINARY_DIR}/cpack_options.cmake)
configure_file(${CMAKE_CURRENT_LIST_DIR}/cpack_options.cmake.in ${CMAKE_CURRENT_BINARY_DIR}/cpack_options.cmake @ONLY)

# First line: the summary. No CPACK_PACKAGE_DESCRIPTION_SUMMARY, which CPackDeb
# would put before each package's own.
set(CPACK_COMPONENT_RUNTIME_DISPLAY_NAME "EventFlow host")
set(CPACK_COMPONENT_RUNTIME_DESCRIPTION "event processing host with plugin pipelines
EventFlow accepts JSON events over HTTP, records each one durably, queues
it and runs it through a pipeline of validator, enricher and sink plugins
wired by YAML files. The host owns idempotency, retries with backoff, the
dead-letter queue, Prometheus metrics, health checks and structured logs.
.
This package holds the host, the built-in plugins, a default configuration
serving the embedded mode (SQLite in /var/lib/eventflow, 127.0.0.1:8000)
and a hardened systemd unit, which is installed but not enabled.")
set(CPACK_COMPONENT_DEV_DISPLAY_NAME "EventFlow plugin SDK")
set(CPACK_COMPONENT_DEV_DESCRIPTION "plugin SDK for the EventFlow event processing host
The headers and the CMake package (find_package(EventFlowPluginAPI),
eventflow_add_plugin()) to build EventFlow validator, enricher and sink
plugins out of tree; `eventflow plugin new` writes a project that builds
against it.")

# --- Debian ---
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_RUNTIME_PACKAGE_NAME eventflow)
set(CPACK_DEBIAN_DEV_PACKAGE_NAME eventflow-dev)
set(CPACK_DEBIAN_RUNTIME_PACKAGE_SECTION net)
set(CPACK_DEBIAN_DEV_PACKAGE_SECTION devel)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
# The shared libraries' packages, computed by dpkg-shlibdeps; adduser for postinst,
# procps for the unit's ExecReload=/bin/kill.
set(CPACK_DEBIAN_RUNTIME_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_RUNTIME_PACKAGE_DEPENDS "adduser, procps")
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS OFF)
# The scaffold's project needs a compiler, CMake and GoogleTest (its test);
# the SDK itself only nlohmann-json.
set(CPACK_DEBIAN_DEV_PACKAGE_RECOMMENDS "cmake (>= 3.20), g++ (>= 4:12), make | ninja-build")
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
# conffiles: dpkg keeps a changed one on upgrade and asks (or keeps it with
# --force-confold); every file under /etc/eventflow is one.
file(GLOB_RECURSE _pipeline_files RELATIVE ${PROJECT_SOURCE_DIR}/pipelines ${PROJECT_SOURCE_DIR}/pipelines/*)
list(FILTER _pipeline_files EXCLUDE REGEX "^examples/")  # installed under /usr/share/doc
list(SORT _pipeline_files)
set(_conffiles "/etc/eventflow/eventflow.yaml\n")
foreach(_f IN LISTS _pipeline_files)
  string(APPEND _conffiles "/etc/eventflow/pipelines/${_f}\n")
endforeach()
file(WRITE ${CMAKE_CURRENT_BINARY_DIR}/debian/conffiles "${_conffiles}")
set(CPACK_DEBIAN_RUNTIME_PACKAGE_CONTROL_EXTRA
  ${CMAKE_CURRENT_BINARY_DIR}/debian/conffiles
  ${CMAKE_CURRENT_LIST_DIR}/debian/postinst
  ${CMAKE_CURRENT_LIST_DIR}/debian/prerm
  ${CMAKE_CURRENT_LIST_DIR}/debian/postrm)

# --- RPM ---
# The summary is the description's first line; rpm summaries start with a
# capital, Debian synopses need not.
foreach(_c RUNTIME DEV)
  string(REGEX MATCH "^([^\n])([^\n]*)\n(.*)$" _ "${CPACK_COMPONENT_${_c}_DESCRIPTION}")
  string(TOUPPER "${CMAKE_MATCH_1}" _first)
  set(CPACK_RPM_${_c}_PACKAGE_SUMMARY "${_first}${CMAKE_MATCH_2}")
  set(CPACK_RPM_${_c}_PACKAGE_DESCRIPTION "${CMAKE_MATCH_3}")
endforeach()
set(CPACK_RPM_COMPONENT_INSTALL ON)
set(CPACK_RPM_RUNTIME_PACKAGE_NAME eventflow)
# -devel is the rpm distributions' name for a -dev package.
set(CPACK_RPM_DEV_PACKAGE_NAME eventflow-devel)
set(CPACK_RPM_DEV_PACKAGE_ARCHITECTURE noarch)
set(CPACK_RPM_PACKAGE_LICENSE "UNDECIDED")
set(CPACK_RPM_PACKAGE_GROUP "System Environment/Daemons")
set(CPACK_RPM_DEV_PACKAGE_GROUP "Development/Libraries")
set(CPACK_RPM_PACKAGE_URL ${CPACK_PACKAGE_HOMEPAGE_URL})
# <name>-<version>-<release>.<arch>.rpm, the name rpm itself gives a package.
set(CPACK_RPM_FILE_NAME RPM-DEFAULT)
# rpm's automatic requires (find-requires) compute the shared libraries.
set(CPACK_RPM_PACKAGE_AUTOREQ ON)
set(CPACK_RPM_PACKAGE_AUTOPROV OFF)
set(CPACK_RPM_RUNTIME_PRE_INSTALL_SCRIPT_FILE ${CMAKE_CURRENT_LIST_DIR}/rpm/pre.sh)
set(CPACK_RPM_RUNTIME_POST_INSTALL_SCRIPT_FILE ${CMAKE_CURRENT_LIST_DIR}/rpm/post.sh)
set(CPACK_RPM_RUNTIME_PRE_UNINSTALL_SCRIPT_FILE ${CMAKE_CURRENT_LIST_DIR}/rpm/preun.sh)
set(_rpm_config "%config(noreplace) /etc/eventflow/eventflow.yaml")
foreach(_f IN LISTS _pipeline_files)
  list(APPEND _rpm_config "%config(noreplace) /etc/eventflow/pipelines/${_f}")
endforeach()
set(CPACK_RPM_RUNTIME_USER_FILELIST ${_rpm_config})
# Folders every system already has are not the package's to own.
set(CPACK_RPM_EXCLUDE_FROM_AUTO_FILELIST_ADDITION
  /etc /usr/lib/systemd /usr/lib/systemd/system /usr/lib/sysusers.d /usr/lib/tmpfiles.d /usr/share/cmake
  /usr/share/bash-completion /usr/share/bash-completion/completions
  /usr/share/man /usr/share/man/man1 /usr/share/lintian /usr/share/lintian/overrides /usr/include)
set(CPACK_RPM_SPEC_MORE_DEFINE "%define _build_id_links none\n%define packager ${CPACK_PACKAGE_CONTACT}")

include(CPack)
cpack_add_component(runtime DISPLAY_NAME "EventFlow host" REQUIRED)
cpack_add_component(dev DISPLAY_NAME "EventFlow plugin SDK" DEPENDS runtime)
