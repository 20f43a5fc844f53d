# `cmake --install` puts the headers, the libraries, a CMake package config
# (find_package(manifold)) and a pkg-config file (manifold.pc) in place.
include(CMakePackageConfigHelpers)

get_property(MANIFOLD_INSTALL_TARGETS GLOBAL PROPERTY MANIFOLD_INSTALL_TARGETS)
install(TARGETS ${MANIFOLD_INSTALL_TARGETS}
  EXPORT manifoldTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})

# The public headers, and only those: what an embedder includes, and what
# those include. internal/ folders, the CLI and the tools are not installed.
# scripts/check-install.sh compiles each installed header on its own.
set(MANIFOLD_PUBLIC_HEADERS
  core/framing.h core/headers.h core/ids.h core/pattern_set.h core/status.h
  core/topic.h
  core/config/config_fields.h core/config/config_file.h
  core/config/config_flags.h
  core/nats/errors.h core/nats/parser.h core/nats/subject.h core/nats/writer.h
  broker/broker.h broker/connection.h broker/options.h broker/outbound_buffer.h
  broker/cluster_link.h
  broker/permissions.h broker/protocol_codec.h broker/session_id_source.h
  broker/statistics.h broker/sys_topics.h broker/version.h
  broker/storage/stream_storage.h broker/storage/memory_stream_storage.h
  broker/auth/authenticator.h broker/auth/login_throttle.h
  broker/auth/password_check.h broker/auth/password_hash.h
  broker/nats/nats_codec.h
  broker/transcript/transcript_recorder.h broker/transcript/transcript_runner.h
  transports/driver/broker_driver.h transports/driver/driver_observer.h
  transports/driver/link_io.h transports/driver/link_security.h
  transports/driver/log.h
  transports/driver/os_session_id_source.h
  transports/driver/recording_observer.h
  transports/epoll/epoll_server.h transports/epoll/wakeable_epoll.h
  transports/memory/memory_broker.h
  transports/sockets/endpoint.h transports/sockets/listen_socket.h
  transports/sockets/socket_io.h transports/sockets/socket_server.h
  transports/sockets/unique_fd.h
  client/backoff.h client/byte_stream.h client/client.h client/errors.h
  client/memory_stream.h
  client/message.h client/session.h client/socket_stream.h)
if(TARGET manifold_io_uring)
  list(APPEND MANIFOLD_PUBLIC_HEADERS transports/io_uring/io_uring_server.h)
endif()
if(TARGET manifold_uv)
  list(APPEND MANIFOLD_PUBLIC_HEADERS transports/uv/uv_server.h)
endif()
if(TARGET manifold_tls)
  list(APPEND MANIFOLD_PUBLIC_HEADERS
    transports/tls/tls_context.h transports/tls/tls_link_security.h
    transports/tls/tls_session.h)
endif()
if(TARGET manifold_tls_stream)
  list(APPEND MANIFOLD_PUBLIC_HEADERS client/tls_stream.h)
endif()
if(TARGET manifold_http_codec)
  list(APPEND MANIFOLD_PUBLIC_HEADERS
    core/http/json_messages.h core/http/prometheus.h core/http/query.h
    core/http/request_parser.h core/http/response.h core/http/sse.h
    core/http/websocket_handshake.h
    broker/http/bayeux.h broker/http/bayeux_json.h
    broker/http/bayeux_session_codec.h
    broker/http/dashboard_assets.h broker/http/http_codec.h
    broker/http/http_credentials.h
    broker/http/http_options.h broker/http/http_status.h
    broker/http/json_codec.h broker/http/websocket_link.h)
endif()
set(MANIFOLD_PUBLIC_PROTOS
  core/manifold.proto core/config/config_options.proto core/nats/connect.proto
  broker/options.proto broker/permissions.proto broker/auth/auth_config.proto
  broker/transcript/transcript.proto)
if(TARGET manifold_cluster)
  list(APPEND MANIFOLD_PUBLIC_HEADERS broker/cluster/cluster_router.h)
endif()
foreach(file ${MANIFOLD_PUBLIC_HEADERS} ${MANIFOLD_PUBLIC_PROTOS})
  get_filename_component(dir ${file} DIRECTORY)
  install(FILES ${file} DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/manifold/${dir})
endforeach()
# The headers generated from the .proto files.
foreach(proto ${MANIFOLD_PUBLIC_PROTOS})
  string(REGEX REPLACE "\\.proto$" ".pb.h" header ${proto})
  get_filename_component(dir ${proto} DIRECTORY)
  install(FILES ${PROJECT_BINARY_DIR}/${header}
    DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/manifold/${dir})
endforeach()
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
if(TARGET manifold_http_codec)
  # The web front end's libraries, after the static libraries that use them.
  string(APPEND MANIFOLD_PC_LIBS " -lwslay -lhttp_parser -lcrypto")
endif()
if(TARGET manifold_cluster)
  string(APPEND MANIFOLD_PC_LIBS " -lhiredis")
endif()
file(RELATIVE_PATH MANIFOLD_PC_UP ${CMAKE_INSTALL_FULL_LIBDIR}/pkgconfig
     ${CMAKE_INSTALL_PREFIX})
configure_file(cmake/manifold.pc.in ${PROJECT_BINARY_DIR}/manifold.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/manifold.pc
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
