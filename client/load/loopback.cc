#include "client/load/loopback.h"

#include <netinet/in.h>

#include <cstring>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace manifold::load {

bool IsLoopback(const sockaddr* address, socklen_t length) {
  if (address == nullptr) return false;
  switch (address->sa_family) {
    case AF_UNIX:
      return true;
    case AF_INET: {
      if (length < static_cast<socklen_t>(sizeof(sockaddr_in))) return false;
      const auto* in = reinterpret_cast<const sockaddr_in*>(address);
      return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
    }
    case AF_INET6: {
      if (length < static_cast<socklen_t>(sizeof(sockaddr_in6))) return false;
      const in6_addr& a =
          reinterpret_cast<const sockaddr_in6*>(address)->sin6_addr;
      if (IN6_IS_ADDR_LOOPBACK(&a)) return true;
      return IN6_IS_ADDR_V4MAPPED(&a) && a.s6_addr[12] == 127;
    }
    default:
      return false;
  }
}

absl::StatusOr<Endpoint> LoopbackEndpoint(absl::string_view server) {
  absl::string_view path = server;
  if (absl::ConsumePrefix(&path, "unix:")) {
    if (path.empty()) {
      return absl::InvalidArgumentError("server 'unix:' names no socket path");
    }
    return Endpoint::Unix(std::string(path));
  }
  absl::StatusOr<Endpoint> endpoint = ParseTcpEndpoint(server);
  if (!endpoint.ok()) return endpoint.status();
  if (endpoint->port == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("server '", server, "' has port 0"));
  }
  absl::StatusOr<SocketAddress> address = Resolve(*endpoint);
  if (!address.ok()) return address.status();
  if (!IsLoopback(address->get(), address->length)) {
    return absl::PermissionDeniedError(absl::StrCat(
        "server '", server,
        "' is not a loopback address; the load tool only targets this "
        "machine (127.0.0.0/8, ::1, localhost or unix:PATH)"));
  }
  return endpoint;
}

}  // namespace manifold::load
