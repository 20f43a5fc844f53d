# `cmake --install` puts the headers, the libraries, a CMake package config
# (find_package(manifold)) and a pkg-config file (manifold.pc) in place.
include(CMakePackageConfigHelpers)

get_property(MANIFOLD_INSTALL_TARGETS GLOBAL PROPERTY MANIFOLD_INSTALL_TARGETS)
install(TARGETS ${MANIFOLD_INSTALL_TARGETS}
  EXPORT manifoldTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})

foreach(dir core broker client transports)
  if(EXISTS ${PROJECT_SOURCE_DIR}/${dir})
    install(DIRECTORY ${dir}/
      DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/manifold/${dir}
      FILES_MATCHING PATTERN "*.h" PATTERN "*.proto")
  endif()
endforeach()
install(FILES ${PROJECT_BINARY_DIR}/core/manifold.pb.h
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/manifold/core)

install(EXPORT manifoldTargets
  NAMESPACE manifold::
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/manifold)
configure_package_config_file(cmake/manifoldConfig.cmake.in
  ${PROJECT_BINARY_DIR}/manifoldConfig.cmake
  INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/manifold)
write_basic_package_version_file(${PROJECT_BINARY_DIR}/manifoldConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES
  ${PROJECT_BINARY_DIR}/manifoldConfig.cmake
  ${PROJECT_BINARY_DIR}/manifoldConfigVersion.cmake
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/manifold)

list(TRANSFORM MANIFOLD_INSTALL_TARGETS REPLACE "^manifold_" "-lmanifold_"
     OUTPUT_VARIABLE MANIFOLD_PC_LIBS)
list(REVERSE MANIFOLD_PC_LIBS)
list(JOIN MANIFOLD_PC_LIBS " " MANIFOLD_PC_LIBS)
file(RELATIVE_PATH MANIFOLD_PC_UP ${CMAKE_INSTALL_FULL_LIBDIR}/pkgconfig
     ${CMAKE_INSTALL_PREFIX})
configure_file(cmake/manifold.pc.in ${PROJECT_BINARY_DIR}/manifold.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/manifold.pc
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
