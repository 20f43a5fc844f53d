#include "transports/sockets/endpoint.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/un.h>

#include <cstring>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace manifold {

std::string Endpoint::ToString() const {
  if (kind == Kind::kUnix) return path;
  if (host.find(':') != std::string::npos) {
    return absl::StrCat("[", host, "]:", port);
  }
  return absl::StrCat(host, ":", port);
}

absl::StatusOr<Endpoint> ParseTcpEndpoint(absl::string_view text) {
  const auto invalid = [&](absl::string_view why) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid address '", text, "': ", why));
  };
  absl::string_view host;
  absl::string_view port;
  if (!text.empty() && text.front() == '[') {
    const size_t close = text.find(']');
    if (close == absl::string_view::npos) return invalid("missing ']'");
    host = text.substr(1, close - 1);
    if (host.empty()) return invalid("empty IPv6 address");
    absl::string_view rest = text.substr(close + 1);
    if (rest.empty() || rest.front() != ':') {
      return invalid("expected ':PORT' after ']'");
    }
    port = rest.substr(1);
  } else {
    const size_t colon = text.rfind(':');
    if (colon == absl::string_view::npos) {
      return invalid("expected HOST:PORT");
    }
    host = text.substr(0, colon);
    if (host.find(':') != absl::string_view::npos) {
      return invalid("write IPv6 addresses in brackets, e.g. [::1]:24387");
    }
    port = text.substr(colon + 1);
  }
  uint32_t number = 0;
  if (port.empty() || !absl::SimpleAtoi(port, &number) || number > 65535 ||
      port.front() == '+' || port.front() == '-') {
    return invalid("the port must be a number from 0 to 65535");
  }
  return Endpoint::Tcp(host.empty() ? "0.0.0.0" : std::string(host),
                       static_cast<uint16_t>(number));
}

absl::StatusOr<SocketAddress> Resolve(const Endpoint& endpoint) {
  SocketAddress address;
  if (endpoint.kind == Endpoint::Kind::kUnix) {
    sockaddr_un* un = reinterpret_cast<sockaddr_un*>(&address.storage);
    if (endpoint.path.empty()) {
      return absl::InvalidArgumentError("empty Unix socket path");
    }
    if (endpoint.path.size() >= sizeof(un->sun_path)) {
      return absl::InvalidArgumentError(
          absl::StrCat("Unix socket path '", endpoint.path, "' is longer than ",
                       sizeof(un->sun_path) - 1, " bytes"));
    }
    un->sun_family = AF_UNIX;
    std::memcpy(un->sun_path, endpoint.path.data(), endpoint.path.size());
    address.length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) +
                                            endpoint.path.size() + 1);
    address.family = AF_UNIX;
    return address;
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* found = nullptr;
  const std::string port = absl::StrCat(endpoint.port);
  const int error =
      getaddrinfo(endpoint.host.c_str(), port.c_str(), &hints, &found);
  if (error != 0 || found == nullptr) {
    return absl::NotFoundError(absl::StrCat("cannot resolve '", endpoint.host,
                                            "': ", gai_strerror(error)));
  }
  std::memcpy(&address.storage, found->ai_addr, found->ai_addrlen);
  address.length = found->ai_addrlen;
  address.family = found->ai_family;
  freeaddrinfo(found);
  return address;
}

std::string FormatSocketAddress(const sockaddr* address, socklen_t length) {
  char text[INET6_ADDRSTRLEN] = {};
  switch (address->sa_family) {
    case AF_INET: {
      const auto* in = reinterpret_cast<const sockaddr_in*>(address);
      inet_ntop(AF_INET, &in->sin_addr, text, sizeof(text));
      return absl::StrCat(text, ":", ntohs(in->sin_port));
    }
    case AF_INET6: {
      const auto* in6 = reinterpret_cast<const sockaddr_in6*>(address);
      inet_ntop(AF_INET6, &in6->sin6_addr, text, sizeof(text));
      return absl::StrCat("[", text, "]:", ntohs(in6->sin6_port));
    }
    case AF_UNIX: {
      const auto* un = reinterpret_cast<const sockaddr_un*>(address);
      const size_t offset = offsetof(sockaddr_un, sun_path);
      if (length <= offset || un->sun_path[0] == '\0') return "unix";
      return absl::StrCat(
          "unix:", absl::string_view(un->sun_path,
                                     strnlen(un->sun_path, length - offset)));
    }
    default:
      return absl::StrCat("family-", address->sa_family);
  }
}

}  // namespace manifold
