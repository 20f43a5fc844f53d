// File: transports/sockets/endpoint.h
// -----------------------------------------------------------------------------
//
// Where a broker listens or a client connects: a TCP "host:port" or a Unix
// domain socket path, parsed once and printed the same way everywhere (the
// "listening on" line, logs, peer addresses).
//
// Accepted TCP forms: "127.0.0.1:24387", "[::1]:24387", "localhost:24387",
// ":24387" (every IPv4 interface). Port 0 asks the kernel for a free port;
// the bound endpoint then carries the real one.
//
// Example:
//
//   absl::StatusOr<Endpoint> tcp = ParseTcpEndpoint("127.0.0.1:0");
//   Endpoint unix_socket = Endpoint::Unix("/tmp/manifold.sock");
//   tcp->ToString();          // "127.0.0.1:0"
//   unix_socket.ToString();   // "/tmp/manifold.sock"
//
//   absl::StatusOr<SocketAddress> address = Resolve(*tcp);  // for bind/connect

#ifndef MANIFOLD_TRANSPORTS_SOCKETS_ENDPOINT_H_
#define MANIFOLD_TRANSPORTS_SOCKETS_ENDPOINT_H_

#include <sys/socket.h>

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace manifold {

struct Endpoint {
  enum class Kind { kTcp, kUnix };

  static Endpoint Tcp(std::string host, uint16_t port) {
    return Endpoint{Kind::kTcp, std::move(host), port, std::string()};
  }
  static Endpoint Unix(std::string path) {
    return Endpoint{Kind::kUnix, std::string(), 0, std::move(path)};
  }

  // "127.0.0.1:24387", "[::1]:24387" or the socket path.
  std::string ToString() const;
  // "tcp" or "unix".
  absl::string_view kind_name() const {
    return kind == Kind::kTcp ? "tcp" : "unix";
  }

  Kind kind = Kind::kTcp;
  std::string host;   // kTcp: a name or numeric address, without brackets
  uint16_t port = 0;  // kTcp
  std::string path;   // kUnix
};

// Parses "host:port", "[v6-address]:port" or ":port". Returns
// INVALID_ARGUMENT naming the problem for anything else (no port, a port
// outside 0..65535, unbalanced brackets).
absl::StatusOr<Endpoint> ParseTcpEndpoint(absl::string_view text);

// A socket address ready for bind() or connect().
struct SocketAddress {
  sockaddr_storage storage{};
  socklen_t length = 0;
  int family = AF_UNSPEC;

  const sockaddr* get() const {
    return reinterpret_cast<const sockaddr*>(&storage);
  }
};

// Resolves `endpoint` to one address: a TCP host through getaddrinfo (numeric
// addresses and /etc/hosts names such as "localhost"; the first result wins),
// a Unix path directly. Returns INVALID_ARGUMENT for a path too long for
// sockaddr_un and NOT_FOUND for a host that does not resolve.
absl::StatusOr<SocketAddress> Resolve(const Endpoint& endpoint);

// Formats a socket address: "127.0.0.1:50212", "[::1]:50212", or
// "unix:<path>" (just "unix" for an unnamed Unix socket, as a client's is).
std::string FormatSocketAddress(const sockaddr* address, socklen_t length);

}  // namespace manifold

#endif  // MANIFOLD_TRANSPORTS_SOCKETS_ENDPOINT_H_
