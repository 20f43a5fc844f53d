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
# binary whose tests ctest lists one by one. Its sources compile at -O0
# unless MANIFOLD_OPTIMIZE_TESTS is on (the top-level CMakeLists.txt says
# why); what it links keeps the build type's flags.
function(manifold_test)
  cmake_parse_arguments(ARG "" "NAME;TIMEOUT" "SOURCES;DEPS;LABELS" ${ARGN})
  add_executable(${ARG_NAME} ${ARG_SOURCES})
  target_link_libraries(${ARG_NAME} PRIVATE ${ARG_DEPS} GTest::gtest_main
                        GTest::gmock)
  if(NOT MANIFOLD_OPTIMIZE_TESTS)
    # After the build type's flags on the command line, so it is the one
    # that counts.
    target_compile_options(${ARG_NAME} PRIVATE -O0)
  endif()
  if(NOT ARG_TIMEOUT)
    set(ARG_TIMEOUT 300)
  endif()
  gtest_discover_tests(${ARG_NAME}
    DISCOVERY_MODE PRE_TEST
    PROPERTIES LABELS "${ARG_LABELS}" TIMEOUT ${ARG_TIMEOUT})
endfunction()

# manifold_proto_cc(OUT_VAR path/to/file.proto [DEPENDS other.proto ...]):
# generates C++ for a .proto under the repository root and sets OUT_VAR to the
# .pb.cc and .pb.h. protoc runs with the repository root as its import path,
# as in the Bazel build, so the header is "path/to/file.pb.h" in both; it
# finds protobuf's own .proto files (descriptor.proto) by itself.
function(manifold_proto_cc OUT_VAR PROTO)
  cmake_parse_arguments(ARG "" "" "DEPENDS" ${ARGN})
  string(REGEX REPLACE "\\.proto$" "" stem ${PROTO})
  set(out ${PROJECT_BINARY_DIR}/${stem}.pb.cc ${PROJECT_BINARY_DIR}/${stem}.pb.h)
  set(deps)
  foreach(dep ${ARG_DEPENDS})
    list(APPEND deps ${PROJECT_SOURCE_DIR}/${dep})
  endforeach()
  add_custom_command(
    OUTPUT ${out}
    COMMAND protobuf::protoc -I${PROJECT_SOURCE_DIR} --cpp_out=${PROJECT_BINARY_DIR}
            ${PROJECT_SOURCE_DIR}/${PROTO}
    DEPENDS ${PROJECT_SOURCE_DIR}/${PROTO} ${deps} protobuf::protoc
    COMMENT "Generating C++ for ${PROTO}")
  set(${OUT_VAR} ${out} PARENT_SCOPE)
endfunction()
