# Small helpers that keep the per-folder CMakeLists.txt files short.

# manifold_library(NAME name SOURCES ... DEPS ... [TESTONLY]): a library named
# manifold_<name>, aliased manifold::<name>, with the repository root (and the
# build tree, for generated protobuf headers) on its include path. Libraries
# that are not TESTONLY are installed.
function(manifold_library)
  cmake_parse_arguments(ARG "TESTONLY" "NAME" "SOURCES;DEPS" ${ARGN})
  add_library(manifold_${ARG_NAME} ${ARG_SOURCES})
  add_library(manifold::${ARG_NAME} ALIAS manifold_${ARG_NAME})
  target_include_directories(manifold_${ARG_NAME} PUBLIC
    $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}>
    $<BUILD_INTERFACE:${PROJECT_BINARY_DIR}>
    $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}/manifold>)
  target_link_libraries(manifold_${ARG_NAME} PUBLIC ${ARG_DEPS})
  set_target_properties(manifold_${ARG_NAME} PROPERTIES EXPORT_NAME ${ARG_NAME})
  if(NOT ARG_TESTONLY)
    set_property(GLOBAL APPEND PROPERTY MANIFOLD_INSTALL_TARGETS
                 manifold_${ARG_NAME})
  endif()
endfunction()

# manifold_test(NAME name SOURCES ... DEPS ... [LABELS ...]): a GoogleTest
# binary whose tests ctest lists one by one.
function(manifold_test)
  cmake_parse_arguments(ARG "" "NAME;TIMEOUT" "SOURCES;DEPS;LABELS" ${ARGN})
  add_executable(${ARG_NAME} ${ARG_SOURCES})
  target_link_libraries(${ARG_NAME} PRIVATE ${ARG_DEPS} GTest::gtest_main
                        GTest::gmock)
  if(NOT ARG_TIMEOUT)
    set(ARG_TIMEOUT 300)
  endif()
  gtest_discover_tests(${ARG_NAME}
    DISCOVERY_MODE PRE_TEST
    PROPERTIES LABELS "${ARG_LABELS}" TIMEOUT ${ARG_TIMEOUT})
endfunction()
