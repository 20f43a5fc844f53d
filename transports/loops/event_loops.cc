#include "transports/loops/event_loops.h"

#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "transports/epoll/epoll_server.h"
#ifdef MANIFOLD_HAVE_IO_URING
#include "transports/io_uring/io_uring_server.h"
#endif
#ifdef MANIFOLD_HAVE_UV
#include "transports/uv/uv_server.h"
#endif

namespace manifold {
namespace {

template <typename Server>
absl::StatusOr<std::unique_ptr<SocketServer>> Make(
    absl::StatusOr<std::unique_ptr<Server>> server) {
  if (!server.ok()) return server.status();
  return std::unique_ptr<SocketServer>(*std::move(server));
}

std::vector<absl::string_view> Loops() {
  std::vector<absl::string_view> loops = {"epoll"};
#ifdef MANIFOLD_HAVE_IO_URING
  loops.push_back("io_uring");
#endif
#ifdef MANIFOLD_HAVE_UV
  loops.push_back("uv");
#endif
  return loops;
}

}  // namespace

std::string AvailableEventLoops() { return absl::StrJoin(Loops(), ","); }

absl::StatusOr<std::unique_ptr<SocketServer>> MakeSocketServer(
    absl::string_view loop, SocketServerOptions options) {
  if (loop == "epoll") return Make(EpollServer::Create(std::move(options)));
#ifdef MANIFOLD_HAVE_IO_URING
  if (loop == "io_uring") {
    return Make(IoUringServer::Create(std::move(options)));
  }
#endif
#ifdef MANIFOLD_HAVE_UV
  if (loop == "uv") return Make(UvServer::Create(std::move(options)));
#endif
  return absl::InvalidArgumentError(
      absl::StrCat("unknown --loop '", loop,
                   "'; this build has: ", absl::StrJoin(Loops(), ", ")));
}

}  // namespace manifold
