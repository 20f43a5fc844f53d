#include "examples/tcp_broker/event_loops.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "transports/epoll/epoll_server.h"

namespace manifold {

std::string AvailableEventLoops() { return "epoll"; }

absl::StatusOr<std::unique_ptr<SocketServer>> MakeSocketServer(
    absl::string_view loop, SocketServerOptions options) {
  if (loop == "epoll") {
    absl::StatusOr<std::unique_ptr<EpollServer>> server =
        EpollServer::Create(std::move(options));
    if (!server.ok()) return server.status();
    return std::unique_ptr<SocketServer>(std::move(*server));
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown --loop '", loop, "'; this build has: ", AvailableEventLoops()));
}

}  // namespace manifold
