// ClusterRouter: a node's interest and messages to and from Redis, without
// I/O (broker/cluster/cluster_router.h; the design is in docs/cluster.md).

#include "broker/cluster/cluster_router.h"

#include <hiredis/hiredis.h>

#include <algorithm>
#include <array>
#include <deque>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/btree_map.h"
#include "absl/container/btree_set.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "broker/cluster/cluster.pb.h"
#include "core/manifold.pb.h"
#include "core/topic.h"

namespace manifold {
namespace {

// Characters Redis's glob matching treats specially.
constexpr absl::string_view kGlobSpecials = "*?[]\\";
// Topics whose interested nodes are remembered; past this the cache starts
// over.
constexpr size_t kMaxCachedTopics = 8192;
// Patterns per PSUBSCRIBE command when many are renewed at once.
constexpr size_t kPatternsPerCommand = 512;
// A reply from Redis may hold one message: its payload, headers and names.
// Anything longer than this is not a reply a node asked for.
constexpr size_t kMaxReplyBytes = size_t{80} << 20;

bool IsNameChar(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_' ||
         c == '.' || c == '-';
}

absl::Status CheckName(absl::string_view field, absl::string_view value,
                       size_t max) {
  if (value.empty() || value.size() > max ||
      !std::all_of(value.begin(), value.end(), IsNameChar)) {
    return absl::InvalidArgumentError(
        absl::StrCat("cluster ", field, " '", value.substr(0, 80),
                     "' must be 1 to ", max, " of A-Z a-z 0-9 _ . -"));
  }
  return absl::OkStatus();
}

void AppendEscaped(std::string& out, absl::string_view literal) {
  for (const char c : literal) {
    if (kGlobSpecials.find(c) != absl::string_view::npos) out.push_back('\\');
    out.push_back(c);
  }
}

absl::string_view StringOf(const redisReply* r) {
  if (r == nullptr ||
      (r->type != REDIS_REPLY_STRING && r->type != REDIS_REPLY_STATUS &&
       r->type != REDIS_REPLY_ERROR)) {
    return {};
  }
  return absl::string_view(r->str, r->len);
}

struct ReplyDeleter {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};
using ReplyPtr = std::unique_ptr<redisReply, ReplyDeleter>;

}  // namespace

std::string RedisGlobFor(absl::string_view channel_prefix,
                         absl::string_view pattern) {
  std::string out;
  out.reserve(channel_prefix.size() + pattern.size() + 8);
  AppendEscaped(out, channel_prefix);
  bool first = true;
  // After `**`, which became `*`: no separator, so that zero segments match.
  bool after_any = false;
  for (absl::string_view segment : absl::StrSplit(pattern, '/')) {
    if (segment == "**") {
      out.push_back('*');
      after_any = true;
      first = false;
      continue;
    }
    if (!first && !after_any) out.push_back('/');
    first = false;
    after_any = false;
    if (segment == "*") {
      out.push_back('*');
    } else {
      AppendEscaped(out, segment);
    }
  }
  return out;
}

bool RedisGlobMatches(absl::string_view glob, absl::string_view channel) {
  size_t g = 0;
  size_t c = 0;
  size_t star_g = absl::string_view::npos;
  size_t star_c = 0;
  while (c < channel.size()) {
    if (g < glob.size() && glob[g] == '*') {
      star_g = ++g;
      star_c = c;
      continue;
    }
    if (g < glob.size()) {
      const bool escaped = glob[g] == '\\' && g + 1 < glob.size();
      const char want = escaped ? glob[g + 1] : glob[g];
      if (want == channel[c]) {
        g += escaped ? 2 : 1;
        ++c;
        continue;
      }
    }
    if (star_g == absl::string_view::npos) return false;
    g = star_g;
    c = ++star_c;
  }
  while (g < glob.size() && glob[g] == '*') ++g;
  return g == glob.size();
}

class ClusterRouter::Impl {
 public:
  Impl(Broker& broker, ClusterOptions options)
      : broker_(broker),
        options_(std::move(options)),
        topic_prefix_(absl::StrCat(options_.prefix, ":t:")),
        node_prefix_(absl::StrCat(options_.prefix, ":n:")),
        control_channel_(absl::StrCat(options_.prefix, ":ctl")),
        own_channel_(absl::StrCat(node_prefix_, options_.node)) {
    stats_.enabled = true;
  }

  ~Impl() {
    for (Link& link : links_) {
      if (link.reader != nullptr) redisReaderFree(link.reader);
    }
  }

  void OnConnected(RedisLink which, absl::Time now) {
    Advance(now);
    Link& link = links_[Index(which)];
    ResetLink(link);
    link.connected = true;
    link.reader = redisReaderCreate();
    const std::string name =
        absl::StrCat(options_.prefix, ":", options_.node,
                     which == RedisLink::kSubscriber ? ":sub" : ":pub");
    Command(which, {"CLIENT", "SETNAME", name});
    if (which == RedisLink::kSubscriber) {
      Command(which, {"SUBSCRIBE", control_channel_, own_channel_});
      std::vector<std::string> globs;
      globs.reserve(wanted_globs_.size());
      for (const auto& [glob, count] : wanted_globs_) globs.push_back(glob);
      std::sort(globs.begin(), globs.end());
      for (size_t i = 0; i < globs.size(); i += kPatternsPerCommand) {
        std::vector<absl::string_view> argv = {"PSUBSCRIBE"};
        for (size_t j = i; j < std::min(globs.size(), i + kPatternsPerCommand);
             ++j) {
          argv.push_back(globs[j]);
        }
        Command(which, argv);
      }
    }
    MaybeJoin();
    Report();
  }

  void OnDisconnected(RedisLink which, absl::string_view why, absl::Time now) {
    Advance(now);
    Link& link = links_[Index(which)];
    if (!link.connected) return;
    ResetLink(link);
    if (which == RedisLink::kSubscriber) {
      control_confirmed_ = false;
      active_globs_.clear();
      canonical_.clear();
    }
    if (joined_) {
      joined_ = false;
      ++stats_.redis_lost;
      wire::BrokerEvent event;
      event.mutable_cluster_redis_lost()->set_message(std::string(why));
      broker_.ReportClusterEvent(std::move(event), now_);
      lost_since_join_ = true;
    }
    Report();
  }

  absl::Status Receive(RedisLink which, absl::string_view bytes,
                       absl::Time now) {
    Advance(now);
    Link& link = links_[Index(which)];
    if (!link.connected) {
      return absl::FailedPreconditionError(
          "bytes on a Redis link that is not connected");
    }
    stats_.bytes_in += bytes.size();
    if (redisReaderFeed(link.reader, bytes.data(), bytes.size()) != REDIS_OK) {
      return absl::DataLossError(absl::StrCat(
          "not RESP from Redis: ", redisReaderGetError(link.reader)));
    }
    absl::Status status;
    while (status.ok()) {
      void* raw = nullptr;
      if (redisReaderGetReply(link.reader, &raw) != REDIS_OK) {
        status = absl::DataLossError(absl::StrCat(
            "not RESP from Redis: ", redisReaderGetError(link.reader)));
        break;
      }
      if (raw == nullptr) break;
      ReplyPtr reply(static_cast<redisReply*>(raw));
      status = which == RedisLink::kSubscriber ? OnSubscriberReply(*reply)
                                               : OnPublisherReply(*reply);
    }
    if (status.ok() && link.reader->len - link.reader->pos > kMaxReplyBytes) {
      status = absl::ResourceExhaustedError(absl::StrCat(
          "a reply from Redis is longer than ", kMaxReplyBytes, " bytes"));
    }
    Report();
    return status;
  }

  absl::string_view PendingOutput(RedisLink which) const {
    const Link& link = links_[Index(which)];
    return absl::string_view(link.out).substr(link.written);
  }

  void Consume(RedisLink which, size_t n) {
    Link& link = links_[Index(which)];
    n = std::min(n, link.out.size() - link.written);
    link.written += n;
    stats_.bytes_out += n;
    if (link.written == link.out.size()) {
      link.out.clear();
      link.written = 0;
    } else if (link.written > (size_t{1} << 20) &&
               link.written > link.out.size() / 2) {
      link.out.erase(0, link.written);
      link.written = 0;
    }
  }

  void Leave(absl::Time now) {
    Advance(now);
    if (!joined_) return;
    wire_control_.Clear();
    wire_control_.mutable_goodbye();
    Announce();
    joined_ = false;
  }

  void Tick(absl::Time now) {
    Advance(now);
    if (!joined_) return;
    if (now_ >= next_heartbeat_) {
      wire_control_.Clear();
      wire_control_.mutable_heartbeat()->set_interval_ms(
          absl::ToInt64Milliseconds(options_.heartbeat));
      Announce();
      next_heartbeat_ = now_ + options_.heartbeat;
    }
    std::vector<std::string> silent;
    for (const auto& [name, node] : nodes_) {
      if (node.last_heard + 2 * node.interval < now_) silent.push_back(name);
    }
    for (const std::string& name : silent) {
      const RemoteNode& node = nodes_.at(name);
      Forget(name, absl::StrCat("silent for ", absl::FormatDuration(absl::Trunc(
                                                   now_ - node.last_heard,
                                                   absl::Milliseconds(1)))));
    }
    while (!reply_order_.empty() && reply_order_.front().second <= now_) {
      auto it = reply_routes_.find(reply_order_.front().first);
      if (it != reply_routes_.end() && it->second.expires <= now_) {
        reply_routes_.erase(it);
      }
      reply_order_.pop_front();
    }
    Report();
  }

  std::optional<absl::Time> NextDeadline() const {
    if (!joined_) return std::nullopt;
    absl::Time next = next_heartbeat_;
    for (const auto& [name, node] : nodes_) {
      next = std::min(next, node.last_heard + 2 * node.interval);
    }
    return next;
  }

  bool joined() const { return joined_; }
  const ClusterOptions& options() const { return options_; }
  const ClusterStatistics& statistics() const {
    figures_ = Figures();
    return figures_;
  }

  void OnLocalInterest(absl::string_view pattern, bool added) {
    // The broker's own topics are each node's own.
    if (IsReserved(pattern)) return;
    if (added) {
      std::string glob = RedisGlobFor(topic_prefix_, pattern);
      if (++wanted_globs_[glob] == 1 && Connected(RedisLink::kSubscriber)) {
        Command(RedisLink::kSubscriber, {"PSUBSCRIBE", glob});
      }
      local_patterns_.emplace(std::string(pattern), std::move(glob));
    } else {
      auto it = local_patterns_.find(pattern);
      if (it == local_patterns_.end()) return;
      auto glob = wanted_globs_.find(it->second);
      if (glob != wanted_globs_.end() && --glob->second == 0) {
        if (Connected(RedisLink::kSubscriber)) {
          Command(RedisLink::kSubscriber, {"PUNSUBSCRIBE", glob->first});
        }
        wanted_globs_.erase(glob);
      }
      local_patterns_.erase(it);
    }
    ++version_;
    stats_.local_patterns = local_patterns_.size();
    if (joined_) {
      wire_control_.Clear();
      cluster::InterestChange* change = wire_control_.mutable_change();
      change->set_pattern(std::string(pattern));
      change->set_added(added);
      Announce();
    }
  }

  uint64_t OnLocalPublish(const PublishOp& publish) {
    if (ABSL_PREDICT_TRUE(nodes_.empty())) return 0;
    const bool wildcard = HasWildcard(publish.topic);
    const std::vector<std::string>& interested =
        InterestedNodes(publish.topic, wildcard);
    const std::string* route_node = nullptr;
    if (!wildcard && !reply_routes_.empty()) {
      auto it = reply_routes_.find(publish.topic);
      if (it != reply_routes_.end() && it->second.expires > now_ &&
          nodes_.contains(it->second.node)) {
        route_node = &it->second.node;
      }
    }
    if (interested.empty() && route_node == nullptr) return 0;
    const size_t targets = interested.size() +
                           (route_node != nullptr &&
                            !std::binary_search(interested.begin(),
                                                interested.end(), *route_node));
    if (!joined_ ||
        Backlog(RedisLink::kPublisher) > options_.max_output_bytes) {
      stats_.messages_dropped += 1;
      return 0;
    }
    envelope_.Clear();
    envelope_.set_origin(options_.node);
    envelope_.set_topic(publish.topic.data(), publish.topic.size());
    envelope_.set_payload(publish.payload.data(), publish.payload.size());
    if (!publish.reply_to.empty()) {
      envelope_.set_reply_to(std::string(publish.reply_to));
    }
    for (const HeaderView& h : publish.headers) {
      cluster::Header* header = envelope_.add_headers();
      header->set_key(std::string(h.key));
      header->set_value(std::string(h.value));
    }
    envelope_.set_has_header_block(publish.has_header_block);
    envelope_.SerializeToString(&scratch_);
    if (!wildcard && route_node == nullptr) {
      // Everyone interested listens on the topic's channel.
      Command(
          RedisLink::kPublisher,
          {"PUBLISH", absl::StrCat(topic_prefix_, publish.topic), scratch_});
      ++stats_.messages_out;
      return targets;
    }
    // A pattern has no channel of its own, and an answer must reach the
    // requester's node even before its interest is known: one copy to each
    // node's own channel.
    for (const std::string& node : interested) {
      Command(RedisLink::kPublisher,
              {"PUBLISH", absl::StrCat(node_prefix_, node), scratch_});
      ++stats_.messages_out;
    }
    if (targets > interested.size()) {
      Command(RedisLink::kPublisher,
              {"PUBLISH", absl::StrCat(node_prefix_, *route_node), scratch_});
      ++stats_.messages_out;
    }
    return targets;
  }

 private:
  struct Link {
    bool connected = false;
    redisReader* reader = nullptr;
    std::string out;
    size_t written = 0;
  };

  struct RemoteNode {
    uint64_t incarnation = 0;
    uint64_t version = 0;
    // Whether `patterns` is known to be at `version`.
    bool synced = false;
    absl::flat_hash_set<std::string> patterns;
    absl::Time last_heard;
    absl::Duration interval;
    absl::Time state_requested = absl::InfinitePast();
  };

  struct ReplyRoute {
    std::string node;
    absl::Time expires;
  };

  static size_t Index(RedisLink link) { return static_cast<size_t>(link); }
  bool Connected(RedisLink link) const { return links_[Index(link)].connected; }
  size_t Backlog(RedisLink link) const {
    const Link& l = links_[Index(link)];
    return l.out.size() - l.written;
  }
  void Advance(absl::Time now) {
    if (now > now_) now_ = now;
  }

  void ResetLink(Link& link) {
    if (link.reader != nullptr) redisReaderFree(link.reader);
    link.reader = nullptr;
    link.connected = false;
    link.out.clear();
    link.written = 0;
  }

  // Appends one command in RESP to `which`'s output.
  void Command(RedisLink which, std::initializer_list<absl::string_view> argv) {
    Command(which, std::vector<absl::string_view>(argv));
  }
  void Command(RedisLink which, const std::vector<absl::string_view>& argv) {
    argv_.clear();
    lengths_.clear();
    for (absl::string_view arg : argv) {
      argv_.push_back(arg.data());
      lengths_.push_back(arg.size());
    }
    char* formatted = nullptr;
    const int n =
        redisFormatCommandArgv(&formatted, static_cast<int>(argv_.size()),
                               argv_.data(), lengths_.data());
    if (n > 0) links_[Index(which)].out.append(formatted, n);
    redisFreeCommand(formatted);
  }

  // Publishes wire_control_ (its kind set by the caller) on the control
  // channel, as this node.
  void Announce() {
    if (!Connected(RedisLink::kPublisher)) return;
    wire_control_.set_node(options_.node);
    wire_control_.set_incarnation(options_.incarnation);
    wire_control_.set_version(version_);
    wire_control_.SerializeToString(&scratch_);
    Command(RedisLink::kPublisher, {"PUBLISH", control_channel_, scratch_});
  }

  void AnnounceState() {
    wire_control_.Clear();
    cluster::InterestState* state = wire_control_.mutable_state();
    state->set_interval_ms(absl::ToInt64Milliseconds(options_.heartbeat));
    std::vector<absl::string_view> patterns;
    patterns.reserve(local_patterns_.size());
    for (const auto& [pattern, glob] : local_patterns_) {
      patterns.push_back(pattern);
    }
    std::sort(patterns.begin(), patterns.end());
    for (absl::string_view p : patterns) state->add_patterns(std::string(p));
    Announce();
  }

  void RequestState(absl::string_view node) {
    wire_control_.Clear();
    wire_control_.mutable_state_request()->set_to(std::string(node));
    Announce();
  }

  // Asks `node` for its state, at most once a heartbeat: every message of
  // an out-of-step node would otherwise ask again.
  void RequestStateOf(RemoteNode& node, absl::string_view name) {
    if (node.state_requested + options_.heartbeat > now_) return;
    node.state_requested = now_;
    RequestState(name);
  }

  void MaybeJoin() {
    if (joined_ || !Connected(RedisLink::kSubscriber) ||
        !Connected(RedisLink::kPublisher) || !control_confirmed_) {
      return;
    }
    joined_ = true;
    // What other nodes said while this one was away is unknown: everyone
    // counts as just heard from and is asked again.
    for (auto& [name, node] : nodes_) {
      node.last_heard = now_;
      node.synced = false;
      node.state_requested = now_;  // the request below asks everyone
    }
    AnnounceState();
    RequestState("");
    next_heartbeat_ = now_ + options_.heartbeat;
    if (lost_since_join_) {
      lost_since_join_ = false;
      wire::BrokerEvent event;
      event.mutable_cluster_redis_back();
      broker_.ReportClusterEvent(std::move(event), now_);
    }
  }

  absl::Status OnPublisherReply(const redisReply& reply) {
    if (reply.type == REDIS_REPLY_ERROR) {
      return absl::FailedPreconditionError(
          absl::StrCat("Redis refused a command: ", StringOf(&reply)));
    }
    return absl::OkStatus();  // PUBLISH's count, CLIENT SETNAME's OK
  }

  absl::Status OnSubscriberReply(const redisReply& reply) {
    if (reply.type == REDIS_REPLY_ERROR) {
      return absl::FailedPreconditionError(
          absl::StrCat("Redis refused a subscription: ", StringOf(&reply)));
    }
    if (reply.type == REDIS_REPLY_STATUS) return absl::OkStatus();  // SETNAME
    if (reply.type != REDIS_REPLY_ARRAY || reply.elements < 3) {
      return absl::DataLossError(
          "Redis sent the subscriber link something that is not a "
          "subscription reply or a message");
    }
    const absl::string_view kind = StringOf(reply.element[0]);
    const absl::string_view first = StringOf(reply.element[1]);
    if (kind == "message") {
      const absl::string_view payload = StringOf(reply.element[2]);
      if (first == control_channel_) {
        OnControl(payload);
      } else if (first == own_channel_) {
        OnEnvelope(payload);
      }
      return absl::OkStatus();
    }
    if (kind == "pmessage") {
      if (reply.elements < 4) {
        return absl::DataLossError("Redis sent a pmessage without a payload");
      }
      const absl::string_view channel = StringOf(reply.element[2]);
      if (first != CanonicalGlob(channel)) {
        // Another of this node's globs brings it too; that copy counts.
        ++stats_.duplicates_dropped;
        return absl::OkStatus();
      }
      OnEnvelope(StringOf(reply.element[3]));
      return absl::OkStatus();
    }
    if (kind == "subscribe") {
      if (first == control_channel_) {
        control_confirmed_ = true;
        MaybeJoin();
      }
      return absl::OkStatus();
    }
    if (kind == "psubscribe") {
      active_globs_.insert(std::string(first));
      canonical_.clear();
      return absl::OkStatus();
    }
    if (kind == "punsubscribe") {
      active_globs_.erase(std::string(first));
      canonical_.clear();
      return absl::OkStatus();
    }
    if (kind == "unsubscribe" || kind == "pong") return absl::OkStatus();
    return absl::DataLossError(
        absl::StrCat("Redis sent the subscriber link an unknown '",
                     kind.substr(0, 32), "'"));
  }

  // Redis delivers a message once per subscribed glob that matches its
  // channel. The node takes the copy of the first such glob, in order, of
  // those Redis has confirmed: the replies come in Redis's order, so that is
  // the set Redis matched against when the message was published.
  const std::string& CanonicalGlob(absl::string_view channel) {
    auto it = canonical_.find(channel);
    if (it != canonical_.end()) return it->second;
    if (canonical_.size() >= kMaxCachedTopics) canonical_.clear();
    std::string first;
    for (const std::string& glob : active_globs_) {
      if (RedisGlobMatches(glob, channel)) {
        first = glob;
        break;
      }
    }
    return canonical_.emplace(std::string(channel), std::move(first))
        .first->second;
  }

  void OnEnvelope(absl::string_view bytes) {
    if (!envelope_.ParseFromArray(bytes.data(),
                                  static_cast<int>(bytes.size())) ||
        envelope_.topic().empty()) {
      ++stats_.malformed;
      return;
    }
    if (envelope_.origin() == options_.node) {
      ++stats_.duplicates_dropped;  // this node's own message, back
      return;
    }
    PublishOp op;
    op.topic = envelope_.topic();
    op.payload = envelope_.payload();
    op.reply_to = envelope_.reply_to();
    for (const cluster::Header& h : envelope_.headers()) {
      op.headers.push_back(HeaderView{h.key(), h.value()});
    }
    op.has_header_block = envelope_.has_header_block();
    if (!op.reply_to.empty())
      RememberReplyRoute(op.reply_to, envelope_.origin());
    ++stats_.messages_in;
    // A message the broker refuses (a limit this node has lower than the
    // origin's) is counted and dropped: it must not end the link.
    if (!broker_.PublishFromCluster(op, now_).ok()) ++stats_.malformed;
  }

  void RememberReplyRoute(absl::string_view reply_to, absl::string_view node) {
    if (options_.max_reply_routes == 0) return;
    const absl::Time expires = now_ + options_.reply_route_ttl;
    auto [it, inserted] = reply_routes_.try_emplace(reply_to);
    it->second.node.assign(node.data(), node.size());
    it->second.expires = expires;
    reply_order_.emplace_back(std::string(reply_to), expires);
    while (reply_routes_.size() > options_.max_reply_routes &&
           !reply_order_.empty()) {
      auto old = reply_routes_.find(reply_order_.front().first);
      if (old != reply_routes_.end() &&
          old->second.expires == reply_order_.front().second) {
        reply_routes_.erase(old);
      }
      reply_order_.pop_front();
    }
    // Re-sent reply subjects leave stale entries in reply_order_; bound it.
    while (reply_order_.size() > 2 * options_.max_reply_routes + 1024) {
      auto old = reply_routes_.find(reply_order_.front().first);
      if (old != reply_routes_.end() &&
          old->second.expires == reply_order_.front().second) {
        reply_routes_.erase(old);
      }
      reply_order_.pop_front();
    }
  }

  void OnControl(absl::string_view bytes) {
    if (!control_.ParseFromArray(bytes.data(),
                                 static_cast<int>(bytes.size())) ||
        !CheckName("node", control_.node(), 64).ok()) {
      ++stats_.malformed;
      return;
    }
    if (control_.node() == options_.node) return;  // this node's own
    const std::string& name = control_.node();
    auto it = nodes_.find(name);
    if (it != nodes_.end() &&
        it->second.incarnation != control_.incarnation()) {
      if (control_.incarnation() < it->second.incarnation) return;  // stale
      Forget(name, "restarted");
      it = nodes_.end();
    }
    if (control_.has_goodbye()) {
      if (it != nodes_.end()) Forget(name, "said goodbye");
      return;
    }
    if (it == nodes_.end()) {
      it = nodes_.emplace(name, RemoteNode()).first;
      it->second.incarnation = control_.incarnation();
      it->second.interval = options_.heartbeat;
      wire::BrokerEvent event;
      wire::ClusterNodeJoined* joined = event.mutable_cluster_node_joined();
      joined->set_node(name);
      joined->set_incarnation(control_.incarnation());
      broker_.ReportClusterEvent(std::move(event), now_);
    }
    RemoteNode& node = it->second;
    node.last_heard = now_;
    switch (control_.kind_case()) {
      case cluster::Control::kHeartbeat:
        if (control_.heartbeat().interval_ms() > 0) {
          node.interval =
              absl::Milliseconds(control_.heartbeat().interval_ms());
        }
        if (!node.synced || node.version != control_.version()) {
          node.synced = false;
          RequestStateOf(node, name);
        }
        break;
      case cluster::Control::kChange:
        if (node.synced && control_.version() == node.version + 1) {
          const cluster::InterestChange& change = control_.change();
          if (change.added()) {
            stats_.remote_patterns +=
                node.patterns.insert(change.pattern()).second;
          } else {
            stats_.remote_patterns -= node.patterns.erase(change.pattern());
          }
          node.version = control_.version();
          interested_.clear();
        } else {
          // A change was missed (or the node is new here): ask for
          // everything.
          node.synced = false;
          RequestStateOf(node, name);
        }
        break;
      case cluster::Control::kState: {
        stats_.remote_patterns -= node.patterns.size();
        node.patterns.clear();
        for (const std::string& p : control_.state().patterns()) {
          if (ValidateTopic(p, TopicRole::kSubscription).ok()) {
            node.patterns.insert(p);
          }
        }
        stats_.remote_patterns += node.patterns.size();
        if (control_.state().interval_ms() > 0) {
          node.interval = absl::Milliseconds(control_.state().interval_ms());
        }
        node.version = control_.version();
        node.synced = true;
        interested_.clear();
        break;
      }
      case cluster::Control::kStateRequest:
        if (control_.state_request().to().empty() ||
            control_.state_request().to() == options_.node) {
          if (joined_) AnnounceState();
        }
        if (!node.synced) RequestStateOf(node, name);
        break;
      default:
        break;
    }
  }

  // Drops what `name` announced; `why` goes into the NodeLeft event.
  void Forget(const std::string& name, absl::string_view why) {
    auto it = nodes_.find(name);
    if (it == nodes_.end()) return;
    stats_.remote_patterns -= it->second.patterns.size();
    nodes_.erase(it);
    stats_.nodes = nodes_.size();
    interested_.clear();
    wire::BrokerEvent event;
    wire::ClusterNodeLeft* left = event.mutable_cluster_node_left();
    left->set_node(name);
    left->set_reason(std::string(why));
    broker_.ReportClusterEvent(std::move(event), now_);
  }

  // The nodes (sorted by name) with a pattern matching `topic` (or, for a
  // publish to a pattern, intersecting it).
  const std::vector<std::string>& InterestedNodes(absl::string_view topic,
                                                  bool wildcard) {
    auto it = interested_.find(topic);
    if (it != interested_.end()) return it->second;
    if (interested_.size() >= kMaxCachedTopics) interested_.clear();
    std::vector<std::string> names;
    for (const auto& [name, node] : nodes_) {
      for (const std::string& pattern : node.patterns) {
        if (wildcard ? Intersects(pattern, topic) : Matches(pattern, topic)) {
          names.push_back(name);
          break;
        }
      }
    }
    return interested_.emplace(std::string(topic), std::move(names))
        .first->second;
  }

  void Report() { broker_.ReportClusterStatistics(Figures()); }
  ClusterStatistics Figures() const {
    ClusterStatistics s = stats_;
    s.nodes = nodes_.size();
    s.redis_connected = joined_;
    s.local_patterns = local_patterns_.size();
    return s;
  }

  Broker& broker_;
  const ClusterOptions options_;
  const std::string topic_prefix_;
  const std::string node_prefix_;
  const std::string control_channel_;
  const std::string own_channel_;
  absl::Time now_ = absl::InfinitePast();

  std::array<Link, 2> links_;
  bool control_confirmed_ = false;
  bool joined_ = false;
  bool lost_since_join_ = false;
  absl::Time next_heartbeat_ = absl::InfiniteFuture();

  // This node's interest: each pattern with its glob, how many patterns
  // want each glob, and the globs Redis confirmed (in order: the first that
  // matches a channel takes its messages).
  absl::flat_hash_map<std::string, std::string> local_patterns_;
  absl::flat_hash_map<std::string, uint32_t> wanted_globs_;
  absl::btree_set<std::string> active_globs_;
  absl::flat_hash_map<std::string, std::string> canonical_;
  uint64_t version_ = 0;

  // The other nodes, by name, and which of them want each topic published
  // here recently.
  absl::btree_map<std::string, RemoteNode> nodes_;
  absl::flat_hash_map<std::string, std::vector<std::string>> interested_;

  // Reply subjects of messages from other nodes, with their node; oldest
  // first in reply_order_ (with the expiry each entry was made with).
  absl::flat_hash_map<std::string, ReplyRoute> reply_routes_;
  std::deque<std::pair<std::string, absl::Time>> reply_order_;

  ClusterStatistics stats_;
  // What statistics() last returned (stats_ with the gauges filled in).
  mutable ClusterStatistics figures_;
  // Reused so that a message allocates little.
  cluster::Envelope envelope_;
  cluster::Control control_;
  cluster::Control wire_control_;
  std::string scratch_;
  std::vector<const char*> argv_;
  std::vector<size_t> lengths_;
};

absl::Status ClusterRouter::Validate(const ClusterOptions& options) {
  if (absl::Status s = CheckName("node", options.node, 64); !s.ok()) return s;
  if (absl::Status s = CheckName("prefix", options.prefix, 32); !s.ok()) {
    return s;
  }
  if (options.heartbeat < absl::Milliseconds(10) ||
      options.heartbeat > absl::Minutes(1)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "cluster heartbeat ", absl::FormatDuration(options.heartbeat),
        " must be between 10ms and 1m"));
  }
  if (options.max_output_bytes < 4096) {
    return absl::InvalidArgumentError(
        "cluster max_output_bytes must be at least 4096");
  }
  if (options.reply_route_ttl <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        "cluster reply_route_ttl must be positive");
  }
  return absl::OkStatus();
}

ClusterRouter::ClusterRouter(Broker& broker, ClusterOptions options)
    : impl_(std::make_unique<Impl>(broker, std::move(options))) {
  broker.AttachCluster(this);
  broker_ = &broker;
}

ClusterRouter::~ClusterRouter() { broker_->AttachCluster(nullptr); }

void ClusterRouter::OnConnected(RedisLink link, absl::Time now) {
  impl_->OnConnected(link, now);
}
void ClusterRouter::OnDisconnected(RedisLink link, absl::string_view why,
                                   absl::Time now) {
  impl_->OnDisconnected(link, why, now);
}
absl::Status ClusterRouter::Receive(RedisLink link, absl::string_view bytes,
                                    absl::Time now) {
  return impl_->Receive(link, bytes, now);
}
absl::string_view ClusterRouter::PendingOutput(RedisLink link) const {
  return impl_->PendingOutput(link);
}
void ClusterRouter::Consume(RedisLink link, size_t n) {
  impl_->Consume(link, n);
}
void ClusterRouter::Leave(absl::Time now) { impl_->Leave(now); }
void ClusterRouter::Tick(absl::Time now) { impl_->Tick(now); }
std::optional<absl::Time> ClusterRouter::NextDeadline() const {
  return impl_->NextDeadline();
}
bool ClusterRouter::joined() const { return impl_->joined(); }
const ClusterOptions& ClusterRouter::options() const {
  return impl_->options();
}
const ClusterStatistics& ClusterRouter::statistics() const {
  return impl_->statistics();
}
void ClusterRouter::OnLocalInterest(absl::string_view pattern, bool added) {
  impl_->OnLocalInterest(pattern, added);
}
uint64_t ClusterRouter::OnLocalPublish(const PublishOp& publish) {
  return impl_->OnLocalPublish(publish);
}

}  // namespace manifold
