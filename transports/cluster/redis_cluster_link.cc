#include "transports/cluster/redis_cluster_link.h"

#include <algorithm>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace manifold {
namespace {

constexpr uint16_t kDefaultRedisPort = 6379;

absl::string_view LinkName(RedisLink link) {
  return link == RedisLink::kSubscriber ? "subscriber" : "publisher";
}

void Earliest(std::optional<absl::Time>& next, absl::Time t) {
  if (!next || t < *next) next = t;
}

}  // namespace

absl::StatusOr<Endpoint> ParseRedisUrl(absl::string_view url) {
  absl::string_view rest = url;
  if (!absl::ConsumePrefix(&rest, "redis://")) {
    return absl::InvalidArgumentError(
        absl::StrCat("cluster address '", url, "' is not redis://HOST:PORT"));
  }
  if (absl::StrContains(rest, '@')) {
    return absl::InvalidArgumentError(absl::StrCat(
        "cluster address '", url,
        "': Redis credentials are not supported; use redis://HOST:PORT"));
  }
  absl::ConsumeSuffix(&rest, "/");
  if (absl::StrContains(rest, '/')) {
    return absl::InvalidArgumentError(
        absl::StrCat("cluster address '", url,
                     "': a database number means nothing to pub/sub; use "
                     "redis://HOST:PORT"));
  }
  std::string host;
  absl::string_view port_text;
  if (absl::ConsumePrefix(&rest, "[")) {
    const size_t close = rest.find(']');
    if (close == absl::string_view::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("cluster address '", url, "': unclosed '['"));
    }
    host = std::string(rest.substr(0, close));
    rest.remove_prefix(close + 1);
    if (!rest.empty() && !absl::ConsumePrefix(&rest, ":")) {
      return absl::InvalidArgumentError(absl::StrCat(
          "cluster address '", url, "': expected ':PORT' after ']'"));
    }
    port_text = rest;
  } else {
    const size_t colon = rest.rfind(':');
    host = std::string(rest.substr(0, colon));
    if (colon != absl::string_view::npos) port_text = rest.substr(colon + 1);
  }
  if (host.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("cluster address '", url, "' has no host"));
  }
  uint32_t port = kDefaultRedisPort;
  if (!port_text.empty() &&
      (!absl::SimpleAtoi(port_text, &port) || port == 0 || port > 65535)) {
    return absl::InvalidArgumentError(absl::StrCat("cluster address '", url,
                                                   "': port '", port_text,
                                                   "' is not 1 to 65535"));
  }
  return Endpoint::Tcp(std::move(host), static_cast<uint16_t>(port));
}

std::string RedisUrl(const Endpoint& redis) {
  return absl::StrCat("redis://", redis.ToString());
}

absl::StatusOr<std::unique_ptr<RedisClusterLink>> RedisClusterLink::Create(
    SocketServer& server, RedisClusterLinkOptions options) {
  if (absl::Status valid = ClusterRouter::Validate(options.cluster);
      !valid.ok()) {
    return valid;
  }
  if (options.redis.kind != Endpoint::Kind::kTcp) {
    return absl::InvalidArgumentError("cluster: Redis must be a TCP address");
  }
  // The one name lookup, here, before the loop runs: connects never block.
  absl::StatusOr<SocketAddress> address = Resolve(options.redis);
  if (!address.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("cluster: ", RedisUrl(options.redis), ": ",
                     address.status().message()));
  }
  return std::unique_ptr<RedisClusterLink>(
      new RedisClusterLink(server, std::move(options), *std::move(address)));
}

RedisClusterLink::RedisClusterLink(SocketServer& server,
                                   RedisClusterLinkOptions options,
                                   SocketAddress address)
    : server_(server),
      options_(std::move(options)),
      address_(std::move(address)),
      url_(RedisUrl(options_.redis)),
      router_(std::make_unique<ClusterRouter>(
          server.driver().broker_for_attachment(), options_.cluster)) {
  for (RedisLink which : {RedisLink::kSubscriber, RedisLink::kPublisher}) {
    auto link = std::make_unique<Link>(*this, which);
    link->retry_at = absl::InfinitePast();  // connect in the first turn
    link->backoff = options_.min_backoff;
    links_[static_cast<int>(which)] = std::move(link);
  }
  server_.driver().SetTurnHook(this);
}

RedisClusterLink::~RedisClusterLink() {
  server_.driver().SetTurnHook(nullptr);
  for (std::unique_ptr<Link>& link : links_) link.reset();  // unwatches
  router_.reset();  // detaches from the Broker
}

void RedisClusterLink::Notify(absl::string_view line) const {
  if (options_.notify) {
    options_.notify(line);
  } else {
    options_.logger.Log(LogLevel::kWarning, line);
  }
}

void RedisClusterLink::StartConnect(Link& link, absl::Time now) {
  link.retry_at.reset();
  link.connection.reset();  // a closed one, never from inside its own call
  link.connect_started = now;
  absl::StatusOr<std::unique_ptr<OutboundConnection>> connection =
      OutboundConnection::Connect(server_, address_, link);
  if (!connection.ok()) {
    LinkDown(link, connection.status(), now);
    return;
  }
  link.connection = *std::move(connection);
}

void RedisClusterLink::LinkDown(Link& link, const absl::Status& why,
                                absl::Time now) {
  const std::string reason(why.message());
  if (link.up) {
    link.up = false;
    router_->OnDisconnected(link.which_, reason, now);
  }
  link.retry_at = now + link.backoff;
  link.backoff = std::min(link.backoff * 2, options_.max_backoff);
  options_.logger.Log(
      LogLevel::kDebug,
      absl::StrCat("cluster: ", LinkName(link.which_), " link to ", url_, ": ",
                   reason, "; retrying in ",
                   absl::FormatDuration(link.retry_at.value() - now)));
  if (logged_joined_) {
    logged_joined_ = false;
    logged_down_ = true;
    Notify(absl::StrCat("cluster: lost ", url_, " (", reason,
                        "); serving local clients, rejoining when it is "
                        "back"));
  } else if (!logged_down_) {
    logged_down_ = true;
    Notify(absl::StrCat("cluster: ", url_, " unreachable (", reason,
                        "); serving local clients, joining when it is up"));
  }
}

void RedisClusterLink::NoteJoined() {
  if (logged_joined_ || !router_->joined()) return;
  logged_joined_ = true;
  logged_down_ = false;
  Notify(absl::StrCat("cluster: joined ", url_, " as node ",
                      options_.cluster.node));
}

void RedisClusterLink::BeforeTurn(absl::Time now) {
  // A graceful shutdown: the other nodes drop this one's interest at once
  // (AfterTurn writes the goodbye) instead of two heartbeats later.
  if (!left_ && server_.driver().broker().shutting_down()) {
    left_ = true;
    router_->Leave(now);
  }
  for (std::unique_ptr<Link>& link : links_) {
    if (link->retry_at && *link->retry_at <= now) {
      StartConnect(*link, now);
    } else if (link->connection != nullptr && !link->connection->closed() &&
               !link->connection->connected() &&
               now - link->connect_started >= options_.connect_timeout) {
      link->connection->Close();
      LinkDown(*link, absl::DeadlineExceededError("connect: timed out"), now);
    }
  }
  if (std::optional<absl::Time> deadline = router_->NextDeadline();
      deadline && *deadline <= now) {
    router_->Tick(now);
  }
}

std::optional<absl::Time> RedisClusterLink::AfterTurn(absl::Time /*now*/) {
  // What this turn's publishers (and the router's timers) queued.
  for (std::unique_ptr<Link>& link : links_) {
    if (link->up && link->connection != nullptr) link->connection->Flush();
  }
  NoteJoined();
  std::optional<absl::Time> next = router_->NextDeadline();
  for (const std::unique_ptr<Link>& link : links_) {
    if (link->retry_at) Earliest(next, *link->retry_at);
    if (link->connection != nullptr && !link->connection->closed() &&
        !link->connection->connected()) {
      Earliest(next, link->connect_started + options_.connect_timeout);
    }
  }
  return next;
}

// --- One link ---------------------------------------------------------------

void RedisClusterLink::Link::OnConnected() {
  up = true;
  backoff = owner_.options_.min_backoff;
  owner_.router_->OnConnected(which_, owner_.server_.driver().Now());
}

absl::Status RedisClusterLink::Link::OnBytes(absl::string_view bytes) {
  return owner_.router_->Receive(which_, bytes, owner_.server_.driver().Now());
}

void RedisClusterLink::Link::OnClosed(absl::Status why) {
  owner_.LinkDown(*this, why, owner_.server_.driver().Now());
}

absl::string_view RedisClusterLink::Link::PendingOutput() {
  return owner_.router_->PendingOutput(which_);
}

void RedisClusterLink::Link::Consume(size_t n) {
  owner_.router_->Consume(which_, n);
}

}  // namespace manifold
