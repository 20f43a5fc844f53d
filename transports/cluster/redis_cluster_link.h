// File: transports/cluster/redis_cluster_link.h
// -----------------------------------------------------------------------------
//
// Joins the Broker of a SocketServer to a cluster over Redis
// (docs/cluster.md): a ClusterRouter (broker/cluster/cluster_router.h) and
// the two TCP connections to Redis it speaks through, run by the server's
// own loop (epoll, io_uring or uv), with no thread of its own.
//
//  - Connects both links without blocking; when Redis is unreachable, or a
//    link is lost, tries again after 100 ms, doubling to 2 s, while the node
//    keeps serving its local clients.
//  - Hands the router every byte Redis sends, writes the router's output
//    after every turn of the loop (what the turn's publishers produced) and
//    whenever a link can take more, and wakes the loop at the router's
//    deadline for its heartbeats.
//  - Logs one line when Redis is unreachable at start, one when the node
//    joins, and one when it loses Redis; retries are quiet.
//
// Example (manifoldd):
//
//   std::unique_ptr<SocketServer> server = ...;   // MakeSocketServer(...)
//   RedisClusterLinkOptions options;
//   options.redis = *ParseRedisUrl("redis://127.0.0.1:6379");
//   options.cluster.node = "n1";
//   options.cluster.incarnation = absl::ToUnixMicros(absl::Now());
//   absl::StatusOr<std::unique_ptr<RedisClusterLink>> link =
//       RedisClusterLink::Create(*server, options);   // before Run()
//   server->Run();
//   link->reset();                                    // before the server
//
// Thread safety: none. Create it and destroy it while Run() is not running;
// everything else happens on the loop's thread.

#ifndef MANIFOLD_TRANSPORTS_CLUSTER_REDIS_CLUSTER_LINK_H_
#define MANIFOLD_TRANSPORTS_CLUSTER_REDIS_CLUSTER_LINK_H_

#include <array>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "broker/cluster/cluster_router.h"
#include "transports/driver/broker_driver.h"
#include "transports/driver/log.h"
#include "transports/sockets/endpoint.h"
#include "transports/sockets/outbound_connection.h"
#include "transports/sockets/socket_server.h"

namespace manifold {

// Parses "redis://HOST:PORT" (HOST a name, an IPv4 address or a bracketed
// IPv6 address; PORT 1 to 65535, 6379 when left out). Returns
// INVALID_ARGUMENT saying what is wrong (another scheme, a password or a
// database number, which the cluster does not use).
absl::StatusOr<Endpoint> ParseRedisUrl(absl::string_view url);

// "redis://HOST:PORT", for logs.
std::string RedisUrl(const Endpoint& redis);

struct RedisClusterLinkOptions {
  // Where Redis listens (TCP).
  Endpoint redis;
  // Checked by Create (ClusterRouter::Validate).
  ClusterOptions cluster;
  // The wait before the first retry of a link, doubling up to the second.
  absl::Duration min_backoff = absl::Milliseconds(100);
  absl::Duration max_backoff = absl::Seconds(2);
  // A connect that takes longer is given up (and retried).
  absl::Duration connect_timeout = absl::Seconds(5);
  // Receives the one-line notices (unreachable at start, joined, lost),
  // without a newline; empty means `logger` at warning level. Retries and
  // their errors go to `logger` at debug level.
  std::function<void(absl::string_view line)> notify;
  Logger logger;
};

class RedisClusterLink : private TurnHook {
 public:
  // Resolves the Redis address (now, before the loop runs), makes the
  // router (attached to the server's Broker) and hooks itself into the
  // server's turns; the links connect in the loop's first turn. Returns
  // INVALID_ARGUMENT for bad ClusterOptions (naming the field) or an
  // address that does not resolve. REQUIRES: Run() has not started, and no
  // other TurnHook is set on the server's driver.
  static absl::StatusOr<std::unique_ptr<RedisClusterLink>> Create(
      SocketServer& server, RedisClusterLinkOptions options);

  RedisClusterLink(const RedisClusterLink&) = delete;
  RedisClusterLink& operator=(const RedisClusterLink&) = delete;
  // Closes the links and detaches the router from the Broker. Destroy it
  // before the server, while Run() is not running.
  ~RedisClusterLink() override;

  // The router, for its statistics and joined().
  const ClusterRouter& router() const { return *router_; }

 private:
  // One of the two connections.
  class Link : public OutboundHandler {
   public:
    Link(RedisClusterLink& owner, RedisLink which)
        : owner_(owner), which_(which) {}
    void OnConnected() override;
    absl::Status OnBytes(absl::string_view bytes) override;
    void OnClosed(absl::Status why) override;
    absl::string_view PendingOutput() override;
    void Consume(size_t n) override;

    RedisClusterLink& owner_;
    const RedisLink which_;
    std::unique_ptr<OutboundConnection> connection;
    bool up = false;  // connected, and the router was told
    absl::Time connect_started;
    // When to try again; unset while a connect runs or the link is up.
    std::optional<absl::Time> retry_at;
    absl::Duration backoff;
  };

  RedisClusterLink(SocketServer& server, RedisClusterLinkOptions options,
                   SocketAddress address);

  // TurnHook
  void BeforeTurn(absl::Time now) override;
  std::optional<absl::Time> AfterTurn(absl::Time now) override;

  void StartConnect(Link& link, absl::Time now);
  // The link failed or was lost: tells the router, schedules the retry,
  // logs what an operator needs to know.
  void LinkDown(Link& link, const absl::Status& why, absl::Time now);
  // Notices joining (once both links are up and Redis confirmed).
  void NoteJoined();
  void Notify(absl::string_view line) const;
  Link& link(RedisLink which) { return *links_[static_cast<int>(which)]; }

  SocketServer& server_;
  const RedisClusterLinkOptions options_;
  const SocketAddress address_;
  const std::string url_;
  std::unique_ptr<ClusterRouter> router_;
  std::array<std::unique_ptr<Link>, 2> links_;
  // What was last logged: the node joined, or Redis is known to be down.
  bool logged_joined_ = false;
  bool logged_down_ = false;
  // The server is shutting down and the router said goodbye.
  bool left_ = false;
};

}  // namespace manifold

#endif  // MANIFOLD_TRANSPORTS_CLUSTER_REDIS_CLUSTER_LINK_H_
