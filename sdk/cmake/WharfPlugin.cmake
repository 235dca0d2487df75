# wharf_add_plugin(NAME SOURCES src... [OUTPUT_DIRECTORY dir] [LINK_LIBRARIES lib...])
#
# Builds one Wharf plugin: a shared object `NAME.so` that exports only the
# entry point emitted by WHARF_PLUGIN (hidden visibility for everything else),
# links no undefined symbols, and is built so that the host can really unload
# it (-fno-gnu-unique keeps glibc from marking it NODELETE).
function(wharf_add_plugin name)
  cmake_parse_arguments(PARSE_ARGV 1 ARG "" "OUTPUT_DIRECTORY" "SOURCES;LINK_LIBRARIES")
  if(NOT ARG_SOURCES)
    message(FATAL_ERROR "wharf_add_plugin(${name}): SOURCES is required")
  endif()
  add_library(${name} MODULE ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE wharf::sdk ${ARG_LINK_LIBRARIES})
  target_compile_features(${name} PRIVATE cxx_std_20)
  set_target_properties(${name} PROPERTIES
    PREFIX ""
    CXX_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON
    POSITION_INDEPENDENT_CODE ON)
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
    target_compile_options(${name} PRIVATE -fno-gnu-unique)
  endif()
  if(CMAKE_SYSTEM_NAME STREQUAL "Linux")
    # Export the entry point and nothing else, not even the weak symbols that
    # headers (Boost's) give default visibility.
    set(version_script "${CMAKE_CURRENT_BINARY_DIR}/${name}.exports")
    file(WRITE "${version_script}" "{ global: wharf_plugin_entry; local: *; };\n")
    target_link_options(${name} PRIVATE -Wl,-z,defs "-Wl,--version-script=${version_script}")
    set_property(TARGET ${name} APPEND PROPERTY LINK_DEPENDS "${version_script}")
  endif()
  if(ARG_OUTPUT_DIRECTORY)
    set_target_properties(${name} PROPERTIES LIBRARY_OUTPUT_DIRECTORY ${ARG_OUTPUT_DIRECTORY})
  elseif(DEFINED WHARF_PLUGIN_OUTPUT_DIR)
    set_target_properties(${name} PROPERTIES LIBRARY_OUTPUT_DIRECTORY ${WHARF_PLUGIN_OUTPUT_DIR})
  endif()
endfunction()
