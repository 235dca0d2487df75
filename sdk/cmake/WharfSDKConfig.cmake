# Package configuration for the Wharf plugin SDK.
#   find_package(WharfSDK 1.0 REQUIRED)
#   wharf_add_plugin(my_operation SOURCES my_operation.cpp)
include(CMakeFindDependencyMacro)
find_dependency(Boost 1.74)
include("${CMAKE_CURRENT_LIST_DIR}/WharfSDKTargets.cmake")
include("${CMAKE_CURRENT_LIST_DIR}/WharfPlugin.cmake")
