// ClusterRouter: a node's interest and messages to and from Redis, without
// I/O (broker/cluster/cluster_router.h; the design is in docs/cluster.md).

#include "broker/cluster/cluster_router.h"

#include <hiredis/hiredis.h>

#include <algorithm>
#include <array>
#include <deque>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/btree_map.h"
#include "absl/container/btree_set.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/container/inlined_vector.h"
#include "absl/hash/hash.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/types/span.h"
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

std::string Escaped(absl::string_view literal) {
  std::string out;
  AppendEscaped(out, literal);
  return out;
}

absl::string_view StringOf(const redisReply* r) {
  if (r == nullptr ||
      (r->type != REDIS_REPLY_STRING && r->type != REDIS_REPLY_STATUS &&
       r->type != REDIS_REPLY_ERROR)) {
    return {};
  }
  return absl::string_view(r->str, r->len);
}

// Appends the RESP header of a bulk string of `n` bytes.
void AppendBulkHeader(std::string& out, size_t n) {
  out.push_back('$');
  absl::StrAppend(&out, n);
  out.append("\r\n");
}

// Appends a command as Redis reads every command: an array of bulk strings.
// Written here rather than with hiredis's redisFormatCommandArgv, which
// formats each length with sprintf into a fresh allocation: for a node
// forwarding small messages that was a quarter of its time.
void AppendCommand(std::string& out, absl::Span<const absl::string_view> argv) {
  out.push_back('*');
  absl::StrAppend(&out, argv.size());
  out.append("\r\n");
  for (absl::string_view arg : argv) {
    AppendBulkHeader(out, arg.size());
    out.append(arg.data(), arg.size());
    out.append("\r\n");
  }
}

// Most bytes of messages one PUBLISH gathers before it is sent.
constexpr size_t kMaxBatchBytes = 64 * 1024;
// Registry keys per refreshing EVAL.
constexpr size_t kKeysPerRefresh = 512;

// The service registry's operations, each atomic in Redis (a Lua script).
// A key <prefix>:svc:<topic> holds "<node> <incarnation>" of the node
// whose server holds the topic, and lapses two heartbeats after its
// holder's last refresh.
//
// Claim: KEYS[1] the key; ARGV: this node's holder value, the lifetime in
// ms, "<node> ". Takes the key when it is free or held by an earlier run of
// this node, and returns 1; else returns the holder.
constexpr absl::string_view kClaimScript =
    "-- manifold: claim\n"
    "local v = redis.call('GET', KEYS[1])\n"
    "if v and v ~= ARGV[1] and string.sub(v, 1, #ARGV[3]) ~= ARGV[3] then\n"
    "  return v\n"
    "end\n"
    "redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])\n"
    "return 1\n";
// Refresh: KEYS the node's keys; ARGV: its holder value, the lifetime in
// ms. Extends the keys it holds, takes back those that vanished (Redis
// restarted), and returns the others as key, holder, key, holder...
constexpr absl::string_view kRefreshScript =
    "-- manifold: refresh\n"
    "local lost = {}\n"
    "for _, k in ipairs(KEYS) do\n"
    "  local v = redis.call('GET', k)\n"
    "  if v == ARGV[1] then\n"
    "    redis.call('PEXPIRE', k, ARGV[2])\n"
    "  elseif not v then\n"
    "    redis.call('SET', k, ARGV[1], 'PX', ARGV[2])\n"
    "  else\n"
    "    lost[#lost + 1] = k\n"
    "    lost[#lost + 1] = v\n"
    "  end\n"
    "end\n"
    "return lost\n";
// Release: KEYS[1] the key; ARGV[1] the holder value. Deletes the key only
// while this node holds it.
constexpr absl::string_view kReleaseScript =
    "-- manifold: release\n"
    "if redis.call('GET', KEYS[1]) == ARGV[1] then\n"
    "  return redis.call('DEL', KEYS[1])\n"
    "end\n"
    "return 0\n";

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

absl::StatusOr<RedisBridge> ParseRedisBridge(absl::string_view spec) {
  const size_t eq = spec.find('=');
  if (eq == absl::string_view::npos) {
    return absl::InvalidArgumentError(absl::StrCat(
        "bridge '", spec.substr(0, 128), "' is not CHANNEL=TOPIC"));
  }
  RedisBridge bridge{std::string(spec.substr(0, eq)),
                     std::string(spec.substr(eq + 1))};
  if (bridge.channel.empty() ||
      bridge.channel.find_first_of("?[]\\") != std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat(
        "bridge '", spec.substr(0, 128),
        "': the channel must be non-empty, with `*` as its only wildcard"));
  }
  if (absl::Status s = ValidateTopic(bridge.topic, TopicRole::kSubscription);
      !s.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("bridge '", spec.substr(0, 128), "': ", s.message()));
  }
  size_t topic_stars = 0;
  for (absl::string_view segment : absl::StrSplit(bridge.topic, '/')) {
    if (segment == "**") {
      return absl::InvalidArgumentError(
          absl::StrCat("bridge '", spec.substr(0, 128),
                       "': the topic may use `*` segments, not `**`"));
    }
    topic_stars += segment == "*";
  }
  const size_t channel_stars =
      std::count(bridge.channel.begin(), bridge.channel.end(), '*');
  if (channel_stars != topic_stars) {
    return absl::InvalidArgumentError(
        absl::StrCat("bridge '", spec.substr(0, 128), "': the channel has ",
                     channel_stars, " `*` and the topic ", topic_stars,
                     "; each `*` of one maps to one of "
                     "the other"));
  }
  return bridge;
}

namespace {

// Matches `channel` against a bridge glob (literal characters and `*`),
// filling `parts` with what each `*` matched; each but the last takes as
// little as it can. Returns false when it does not match.
bool CaptureStars(absl::string_view glob, absl::string_view channel,
                  std::vector<absl::string_view>& parts) {
  const size_t star = glob.find('*');
  if (star == absl::string_view::npos) return glob == channel;
  if (!absl::StartsWith(channel, glob.substr(0, star))) return false;
  channel.remove_prefix(star);
  glob.remove_prefix(star + 1);
  const size_t next = glob.find('*');
  const absl::string_view literal = glob.substr(0, next);
  if (next == absl::string_view::npos) {
    if (!absl::EndsWith(channel, literal)) return false;
    parts.push_back(channel.substr(0, channel.size() - literal.size()));
    return true;
  }
  for (size_t at = channel.find(literal); at != absl::string_view::npos;
       at = channel.find(literal, at + 1)) {
    const size_t kept = parts.size();
    parts.push_back(channel.substr(0, at));
    if (CaptureStars(glob, channel.substr(at), parts)) return true;
    parts.resize(kept);
  }
  return false;
}

// Fills the `*` segments of topic `pattern` with `parts`, in order.
std::string FillTopic(absl::string_view pattern,
                      absl::Span<const absl::string_view> parts) {
  std::string out;
  size_t next = 0;
  bool first = true;
  for (absl::string_view segment : absl::StrSplit(pattern, '/')) {
    if (!first) out.push_back('/');
    first = false;
    absl::StrAppend(
        &out, segment == "*" && next < parts.size() ? parts[next++] : segment);
  }
  return out;
}

// The channel of bridge `glob` for literal `topic`, which its topic
// `pattern` matches: each `*` of the glob gets the topic's segment where the
// pattern has its `*`.
std::string FillChannel(absl::string_view glob, absl::string_view pattern,
                        absl::string_view topic) {
  std::vector<absl::string_view> parts;
  std::vector<absl::string_view> topic_segments = absl::StrSplit(topic, '/');
  size_t i = 0;
  for (absl::string_view segment : absl::StrSplit(pattern, '/')) {
    if (segment == "*" && i < topic_segments.size()) {
      parts.push_back(topic_segments[i]);
    }
    ++i;
  }
  std::string out;
  size_t next = 0;
  for (const char c : glob) {
    if (c == '*' && next < parts.size()) {
      absl::StrAppend(&out, parts[next++]);
    } else {
      out.push_back(c);
    }
  }
  return out;
}

}  // namespace

class ClusterRouter::Impl {
 public:
  Impl(Broker& broker, ClusterOptions options)
      : broker_(broker),
        options_(std::move(options)),
        topic_prefix_(absl::StrCat(options_.prefix, ":t:")),
        node_prefix_(absl::StrCat(options_.prefix, ":n:")),
        control_channel_(absl::StrCat(options_.prefix, ":ctl")),
        own_channel_(absl::StrCat(node_prefix_, options_.node)),
        cluster_channel_prefix_(absl::StrCat(options_.prefix, ":")),
        escaped_topic_prefix_(Escaped(topic_prefix_)),
        registry_prefix_(absl::StrCat(options_.prefix, ":svc:")),
        holder_(absl::StrCat(options_.node, " ", options_.incarnation)),
        holder_prefix_(absl::StrCat(options_.node, " ")),
        claim_lifetime_ms_(
            absl::StrCat(absl::ToInt64Milliseconds(2 * options_.heartbeat))) {
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
    if (which == RedisLink::kPublisher) FailRegistryWaits("reconnected");
    ResetLink(link);
    link.connected = true;
    link.reader = redisReaderCreate();
    const std::string name =
        absl::StrCat(options_.prefix, ":", options_.node,
                     which == RedisLink::kSubscriber ? ":sub" : ":pub");
    Command(which, {"CLIENT", "SETNAME", name});
    if (which == RedisLink::kSubscriber) {
      Command(which, {"SUBSCRIBE", control_channel_, own_channel_});
      bridge_sent_.clear();
      bridge_echoes_ = 0;
      for (const RedisBridge& bridge : options_.bridges) {
        Command(which, {"PSUBSCRIBE", bridge.channel});
      }
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
    if (which == RedisLink::kPublisher) FailRegistryWaits(why);
    ResetLink(link);
    if (which == RedisLink::kSubscriber) {
      control_confirmed_ = false;
      active_globs_.clear();
      canonical_.clear();
    }
    FailCalls("", absl::StrCat("this node lost the cluster (Redis: ", why,
                               ") while the request was on node "));
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

  absl::string_view PendingOutput(RedisLink which) {
    if (which == RedisLink::kPublisher) FlushBatch();
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
    // Its topics are free for other nodes' servers at once, not when the
    // claims lapse.
    for (const std::string& topic : owned_) {
      const std::string key = absl::StrCat(registry_prefix_, topic);
      Command(RedisLink::kPublisher,
              {"EVAL", kReleaseScript, "1", key, holder_});
      Expect(RegistryWait::kRelease, topic);
    }
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
      RefreshClaims();
      next_heartbeat_ = now_ + options_.heartbeat;
      for (auto it = calls_.begin(); it != calls_.end();) {
        // The requester's broker gave up on it (timed out) by now.
        if (it->second.forget_at < now_) {
          calls_.erase(it++);
        } else {
          ++it;
        }
      }
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

  void OnLocalInterest(absl::string_view pattern, absl::string_view group,
                       bool added) {
    // The broker's own topics are each node's own.
    if (IsReserved(pattern)) return;
    InterestKey key(pattern, group);
    if (added) {
      std::string glob = RedisGlobFor(topic_prefix_, pattern);
      if (++wanted_globs_[glob] == 1 && Connected(RedisLink::kSubscriber)) {
        Command(RedisLink::kSubscriber, {"PSUBSCRIBE", glob});
      }
      local_interest_.emplace(std::move(key), std::move(glob));
    } else {
      auto it = local_interest_.find(key);
      if (it == local_interest_.end()) return;
      auto glob = wanted_globs_.find(it->second);
      if (glob != wanted_globs_.end() && --glob->second == 0) {
        if (Connected(RedisLink::kSubscriber)) {
          Command(RedisLink::kSubscriber, {"PUNSUBSCRIBE", glob->first});
        }
        wanted_globs_.erase(glob);
      }
      local_interest_.erase(it);
    }
    ++version_;
    if (joined_) {
      wire_control_.Clear();
      cluster::InterestChange* change = wire_control_.mutable_change();
      change->set_pattern(std::string(pattern));
      change->set_queue_group(std::string(group));
      change->set_added(added);
      Announce();
    }
  }

  void BeginPublish(const PublishOp& publish) {
    mode_ = Mode::kLocal;
    pending_groups_.clear();
    current_topic_.assign(publish.topic.data(), publish.topic.size());
  }

  bool TakesGroup(absl::string_view pattern, absl::string_view group) {
    switch (mode_) {
      case Mode::kIdle:
        return true;
      case Mode::kArrival:
        // The origin chose; a group it did not know of is not this node's.
        for (const cluster::GroupChoice& c : arrival_->groups()) {
          if (c.pattern() == pattern && c.queue_group() == group) {
            return c.node() == options_.node;
          }
        }
        return false;
      case Mode::kLocal:
        break;
    }
    if (nodes_.empty()) return true;
    // A bridged topic reaches each node through Redis's own channel, and
    // each node gives it to its own members.
    if (ABSL_PREDICT_FALSE(!options_.bridges.empty()) &&
        BridgeOf(current_topic_) != nullptr) {
      return true;
    }
    const TopicInterest& interest =
        InterestFor(current_topic_, HasWildcard(current_topic_));
    for (const GroupCandidates& g : interest.groups) {
      if (g.key.first != pattern || g.key.second != group) continue;
      // Turns go round this node and the others with members.
      const uint64_t turn = NextTurn(g.key);
      const size_t pick = turn % (g.nodes.size() + 1);
      const std::string& node = pick == 0 ? options_.node : g.nodes[pick - 1];
      pending_groups_.push_back({g.key, node});
      return pick == 0;
    }
    return true;  // no other node has members
  }

  uint64_t OnLocalPublish(const PublishOp& publish) {
    const bool local = mode_ == Mode::kLocal;
    mode_ = Mode::kIdle;
    if (ABSL_PREDICT_FALSE(!options_.bridges.empty())) {
      if (const RedisBridge* bridge = BridgeOf(publish.topic)) {
        return SendToBridge(*bridge, publish);
      }
    }
    if (ABSL_PREDICT_TRUE(nodes_.empty())) return 0;
    const bool wildcard = HasWildcard(publish.topic);
    const TopicInterest& interest = InterestFor(publish.topic, wildcard);
    targets_.clear();
    for (const std::string& node : interest.plain) targets_.insert(node);
    // Each queue group another node has members of: the turn this node
    // took for it while delivering, or else the next of those nodes.
    choices_.clear();
    for (const GroupCandidates& g : interest.groups) {
      const std::string* chosen = nullptr;
      if (local) {
        for (const auto& [key, node] : pending_groups_) {
          if (key == g.key) chosen = &node;
        }
      }
      if (chosen == nullptr) {
        chosen = &g.nodes[NextTurn(g.key) % g.nodes.size()];
      }
      choices_.push_back({&g.key, chosen});
      if (*chosen != options_.node) targets_.insert(*chosen);
    }
    const std::string* route_node = nullptr;
    if (!wildcard && !reply_routes_.empty()) {
      auto it = reply_routes_.find(publish.topic);
      if (it != reply_routes_.end() && it->second.expires > now_ &&
          nodes_.contains(it->second.node)) {
        route_node = &it->second.node;
        targets_.insert(*route_node);
      }
    }
    if (targets_.empty()) return 0;
    if (!joined_ ||
        Backlog(RedisLink::kPublisher) > options_.max_output_bytes) {
      stats_.messages_dropped += 1;
      return 0;
    }
    outgoing_.Clear();
    outgoing_.set_origin(options_.node);
    outgoing_.set_topic(publish.topic.data(), publish.topic.size());
    outgoing_.set_payload(publish.payload.data(), publish.payload.size());
    if (!publish.reply_to.empty()) {
      outgoing_.set_reply_to(publish.reply_to.data(), publish.reply_to.size());
    }
    for (const HeaderView& h : publish.headers) {
      cluster::Header* header = outgoing_.add_headers();
      header->set_key(h.key.data(), h.key.size());
      header->set_value(h.value.data(), h.value.size());
    }
    outgoing_.set_has_header_block(publish.has_header_block);
    for (const auto& [key, node] : choices_) {
      cluster::GroupChoice* choice = outgoing_.add_groups();
      choice->set_pattern(key->first);
      choice->set_queue_group(key->second);
      choice->set_node(*node);
    }
    if (!wildcard && route_node == nullptr) {
      // Everyone interested listens on the topic's channel.
      Gather(topic_prefix_, publish.topic, /*last=*/true);
      return targets_.size();
    }
    // A pattern has no channel of its own, and an answer must reach the
    // requester's node even before its interest is known: one copy to each
    // node's own channel.
    size_t left = targets_.size();
    for (absl::string_view node : targets_) {
      Gather(node_prefix_, node, /*last=*/--left == 0);
    }
    return targets_.size();
  }

  bool ClaimService(absl::string_view topic) {
    if (!joined_) return false;
    const std::string key = absl::StrCat(registry_prefix_, topic);
    Command(RedisLink::kPublisher, {"EVAL", kClaimScript, "1", key, holder_,
                                    claim_lifetime_ms_, holder_prefix_});
    Expect(RegistryWait::kClaim, topic);
    return true;
  }

  void ReleaseService(absl::string_view topic) {
    auto it = owned_.find(topic);
    if (it == owned_.end()) return;
    owned_.erase(it);
    ++version_;
    AnnounceService(topic, /*added=*/false);
    if (!Connected(RedisLink::kPublisher)) return;  // it lapses by itself
    const std::string key = absl::StrCat(registry_prefix_, topic);
    Command(RedisLink::kPublisher, {"EVAL", kReleaseScript, "1", key, holder_});
    Expect(RegistryWait::kRelease, topic);
  }

  absl::string_view ForwardRequest(const ClusterCall& call) {
    if (!joined_ || nodes_.empty()) return {};
    const std::string* owner = nullptr;
    for (const auto& [name, node] : nodes_) {
      if (node.services.contains(call.topic)) {
        owner = &name;
        break;
      }
    }
    if (owner == nullptr) return {};
    if (Backlog(RedisLink::kPublisher) > options_.max_output_bytes) {
      ++stats_.messages_dropped;
      return {};
    }
    BatchFor(node_prefix_, *owner);
    cluster::ServiceCall* out = batch_.add_calls();
    out->set_origin(options_.node);
    out->set_call_id(call.call_id);
    out->set_topic(call.topic.data(), call.topic.size());
    out->set_payload(call.payload.data(), call.payload.size());
    for (const HeaderView& h : call.headers) {
      cluster::Header* header = out->add_headers();
      header->set_key(h.key.data(), h.key.size());
      header->set_value(h.value.data(), h.value.size());
    }
    out->set_timeout_ms(call.timeout_ms);
    out->set_requester_session_id(call.requester_session_id);
    batch_bytes_ += call.payload.size() + call.topic.size() + 32;
    ++stats_.messages_out;
    ++stats_.requests_forwarded;
    last_owner_ = *owner;
    calls_[call.call_id] =
        Call{*owner, now_ + absl::Milliseconds(call.timeout_ms) +
                         2 * options_.heartbeat};
    return last_owner_;
  }

  void AnswerRequest(absl::string_view origin, uint64_t call_id,
                     wire::RequestStatus status, absl::string_view message,
                     const wire::Respond* respond) {
    // Without Redis the answer cannot go; the origin tells its requester
    // (SERVER_GONE when it notices, else TIMED_OUT).
    if (!joined_ ||
        Backlog(RedisLink::kPublisher) > options_.max_output_bytes) {
      ++stats_.messages_dropped;
      return;
    }
    BatchFor(node_prefix_, origin);
    cluster::ServiceAnswer* out = batch_.add_answers();
    out->set_call_id(call_id);
    out->set_status(status);
    out->set_message(message.data(), message.size());
    if (respond != nullptr) {
      out->set_answered(true);
      out->set_payload(respond->payload());
      for (const wire::Header& h : respond->headers()) {
        cluster::Header* header = out->add_headers();
        header->set_key(h.key());
        header->set_value(h.value());
      }
    }
    batch_bytes_ += out->payload().size() + out->message().size() + 32;
    ++stats_.messages_out;
  }

 private:
  struct Link {
    bool connected = false;
    redisReader* reader = nullptr;
    std::string out;
    size_t written = 0;
  };

  // A pattern, and a queue group ("" for broadcast subscriptions).
  using InterestKey = std::pair<std::string, std::string>;

  struct RemoteNode {
    uint64_t incarnation = 0;
    uint64_t version = 0;
    // Whether `interest` is known to be at `version`.
    bool synced = false;
    absl::flat_hash_set<InterestKey> interest;
    // Topics its servers hold.
    absl::flat_hash_set<std::string> services;
    absl::Time last_heard;
    absl::Duration interval;
    absl::Time state_requested = absl::InfinitePast();
  };

  // Which nodes want a topic: those with a broadcast subscription, and for
  // each queue group the nodes (sorted) with members.
  struct GroupCandidates {
    InterestKey key;
    std::vector<std::string> nodes;
  };
  struct TopicInterest {
    std::vector<std::string> plain;
    std::vector<GroupCandidates> groups;
  };

  // What TakesGroup is answering for.
  enum class Mode {
    kIdle,     // the broker's own messages: this node's members
    kLocal,    // a local publish: this node chooses
    kArrival,  // a message from another node: its origin chose
  };

  struct ReplyRoute {
    std::string node;
    absl::Time expires;
  };

  enum class RegistryWait { kClaim, kRefresh, kRelease };
  struct Wait {
    uint64_t index;
    RegistryWait kind;
    std::string topic;
  };
  struct Call {
    std::string node;
    // After this, the requester's broker has given up on it.
    absl::Time forget_at;
  };

  static size_t Index(RedisLink link) { return static_cast<size_t>(link); }
  bool Connected(RedisLink link) const { return links_[Index(link)].connected; }
  size_t Backlog(RedisLink link) const {
    const Link& l = links_[Index(link)];
    return l.out.size() - l.written +
           (link == RedisLink::kPublisher ? batch_bytes_ : 0);
  }
  void Advance(absl::Time now) {
    if (now > now_) now_ = now;
  }

  void ResetLink(Link& link) {
    if (&link == &links_[Index(RedisLink::kPublisher)]) {
      batch_.Clear();  // lost with the link, as what it had not written
      batch_bytes_ = 0;
      publisher_sent_ = 0;
      publisher_replies_ = 0;
      waits_.clear();
    }
    if (link.reader != nullptr) redisReaderFree(link.reader);
    link.reader = nullptr;
    link.connected = false;
    link.out.clear();
    link.written = 0;
  }

  // Appends one command in RESP to `which`'s output, after the messages
  // gathered before it.
  void Command(RedisLink which, absl::Span<const absl::string_view> argv) {
    if (which == RedisLink::kPublisher) {
      FlushBatch();
      ++publisher_sent_;
    }
    AppendCommand(links_[Index(which)].out, argv);
  }

  // The reply to the command just written on the publisher link is a
  // registry operation's on `topic`.
  void Expect(RegistryWait kind, absl::string_view topic) {
    waits_.push_back({publisher_sent_ - 1, kind, std::string(topic)});
  }

  // Claims waiting for a reply the publisher link will not bring now fail;
  // the Serve waiting for each is told why.
  void FailRegistryWaits(absl::string_view why) {
    std::deque<Wait> waits = std::move(waits_);
    waits_.clear();
    for (const Wait& wait : waits) {
      if (wait.kind != RegistryWait::kClaim) continue;
      broker_.ServiceClaimed(
          wait.topic,
          absl::UnavailableError(absl::StrCat(
              "the connection to the cluster's registry (Redis) was lost "
              "before it confirmed the claim of '",
              wait.topic, "' (", why, "); try again")),
          now_);
    }
  }

  // Requests forwarded to `node` (every node, when empty) will not be
  // answered: their requesters get SERVER_GONE, `why` + the node's name.
  void FailCalls(absl::string_view node, absl::string_view why) {
    std::vector<std::pair<uint64_t, std::string>> failed;
    for (auto it = calls_.begin(); it != calls_.end();) {
      if (node.empty() || it->second.node == node) {
        failed.emplace_back(it->first, std::move(it->second.node));
        calls_.erase(it++);
      } else {
        ++it;
      }
    }
    for (const auto& [id, name] : failed) {
      broker_.AnswerFromCluster(id, wire::SERVER_GONE, absl::StrCat(why, name),
                                nullptr, now_);
    }
  }

  // Announces that this node's servers hold `topic` now, or no longer.
  void AnnounceService(absl::string_view topic, bool added) {
    if (!joined_) return;
    wire_control_.Clear();
    cluster::ServiceChange* change = wire_control_.mutable_service();
    change->set_topic(std::string(topic));
    change->set_added(added);
    Announce();
  }

  // Extends this node's claims (and takes back those Redis forgot).
  void RefreshClaims() {
    if (owned_.empty() || !Connected(RedisLink::kPublisher)) return;
    auto it = owned_.begin();
    while (it != owned_.end()) {
      std::vector<std::string> keys;
      for (; it != owned_.end() && keys.size() < kKeysPerRefresh; ++it) {
        keys.push_back(absl::StrCat(registry_prefix_, *it));
      }
      std::vector<absl::string_view> argv = {"EVAL", kRefreshScript};
      const std::string count = absl::StrCat(keys.size());
      argv.push_back(count);
      for (const std::string& key : keys) argv.push_back(key);
      argv.push_back(holder_);
      argv.push_back(claim_lifetime_ms_);
      Command(RedisLink::kPublisher, argv);
      Expect(RegistryWait::kRefresh, "");
    }
  }

  absl::Status OnRegistryReply(const Wait& wait, const redisReply& reply) {
    switch (wait.kind) {
      case RegistryWait::kClaim: {
        if (reply.type == REDIS_REPLY_INTEGER && reply.integer == 1) {
          owned_.insert(wait.topic);
          ++version_;
          AnnounceService(wait.topic, /*added=*/true);
          broker_.ServiceClaimed(wait.topic, absl::OkStatus(), now_);
        } else if (reply.type == REDIS_REPLY_STRING) {
          const absl::string_view holder = StringOf(&reply);
          broker_.ServiceClaimed(
              wait.topic,
              absl::AlreadyExistsError(absl::StrCat(
                  "topic '", wait.topic, "' is already served on node ",
                  holder.substr(0, holder.find(' ')))),
              now_);
        } else {
          broker_.ServiceClaimed(
              wait.topic,
              absl::UnavailableError(absl::StrCat(
                  "the cluster's registry (Redis) did not grant the claim "
                  "of '",
                  wait.topic, "': ",
                  reply.type == REDIS_REPLY_ERROR ? StringOf(&reply)
                                                  : "an unexpected reply")),
              now_);
        }
        return absl::OkStatus();
      }
      case RegistryWait::kRefresh:
        if (reply.type != REDIS_REPLY_ARRAY) {
          ++stats_.malformed;
          return absl::OkStatus();
        }
        for (size_t i = 0; i + 1 < reply.elements; i += 2) {
          absl::string_view key = StringOf(reply.element[i]);
          const absl::string_view holder = StringOf(reply.element[i + 1]);
          if (!absl::ConsumePrefix(&key, registry_prefix_)) continue;
          auto it = owned_.find(key);
          if (it == owned_.end()) continue;
          const std::string topic = *it;
          owned_.erase(it);
          ++version_;
          AnnounceService(topic, /*added=*/false);
          broker_.ServiceTakenOver(
              topic,
              absl::StrCat("the cluster gave it to node ",
                           holder.substr(0, holder.find(' ')),
                           " while this node's claim had lapsed"),
              now_);
        }
        return absl::OkStatus();
      case RegistryWait::kRelease:
        if (reply.type == REDIS_REPLY_ERROR) ++stats_.malformed;
        return absl::OkStatus();
    }
    return absl::OkStatus();
  }

  // Adds outgoing_ to the messages for channel `prefix` + `name`: one
  // PUBLISH carries what a turn has for one channel (sent when the channel
  // changes, the batch is full, another command follows, or the embedder
  // takes the output). `last`: outgoing_ is not needed again (it is moved).
  void Gather(absl::string_view prefix, absl::string_view name, bool last) {
    BatchFor(prefix, name);
    batch_bytes_ += outgoing_.payload().size() + outgoing_.topic().size() + 16;
    cluster::Envelope* slot = batch_.add_messages();
    if (last) {
      slot->Swap(&outgoing_);
    } else {
      *slot = outgoing_;
    }
    ++stats_.messages_out;
  }

  bool BatchEmpty() const {
    return batch_.messages_size() == 0 && batch_.calls_size() == 0 &&
           batch_.answers_size() == 0;
  }

  // Makes batch_ the one for channel `prefix` + `name`, sending what it
  // held for another channel (or when it is full).
  void BatchFor(absl::string_view prefix, absl::string_view name) {
    if (!BatchEmpty() &&
        (batch_channel_.size() != prefix.size() + name.size() ||
         !absl::StartsWith(batch_channel_, prefix) ||
         !absl::EndsWith(batch_channel_, name) ||
         batch_bytes_ >= kMaxBatchBytes)) {
      FlushBatch();
    }
    if (BatchEmpty()) {
      batch_channel_.assign(prefix.data(), prefix.size());
      batch_channel_.append(name.data(), name.size());
      batch_bytes_ = 0;
    }
  }

  // Writes the gathered messages as one PUBLISH.
  void FlushBatch() {
    if (BatchEmpty()) return;
    std::string& out = links_[Index(RedisLink::kPublisher)].out;
    out.append("*3\r\n$7\r\nPUBLISH\r\n");
    AppendBulkHeader(out, batch_channel_.size());
    out.append(batch_channel_);
    out.append("\r\n");
    const size_t size = batch_.ByteSizeLong();
    AppendBulkHeader(out, size);
    const size_t at = out.size();
    out.resize(at + size);
    batch_.SerializeWithCachedSizesToArray(
        reinterpret_cast<uint8_t*>(out.data() + at));
    out.append("\r\n");
    ++stats_.publishes_out;
    ++publisher_sent_;
    batch_.Clear();
    batch_bytes_ = 0;
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
    std::vector<const InterestKey*> keys;
    keys.reserve(local_interest_.size());
    for (const auto& [key, glob] : local_interest_) keys.push_back(&key);
    std::sort(
        keys.begin(), keys.end(),
        [](const InterestKey* a, const InterestKey* b) { return *a < *b; });
    for (const InterestKey* key : keys) {
      if (key->second.empty()) {
        state->add_patterns(key->first);
      } else {
        cluster::GroupInterest* g = state->add_groups();
        g->set_pattern(key->first);
        g->set_queue_group(key->second);
      }
    }
    for (const std::string& topic : owned_) state->add_services(topic);
    Announce();
  }

  void RequestState(absl::string_view node) {
    wire_control_.Clear();
    wire_control_.mutable_state_request()->set_to(std::string(node));
    Announce();
  }

  // The first bridge whose topic pattern matches literal `topic`, or null.
  const RedisBridge* BridgeOf(absl::string_view topic) {
    if (HasWildcard(topic)) return nullptr;
    auto it = bridge_of_.find(topic);
    if (it != bridge_of_.end()) return it->second;
    if (bridge_of_.size() >= kMaxCachedTopics) bridge_of_.clear();
    const RedisBridge* found = nullptr;
    for (const RedisBridge& bridge : options_.bridges) {
      if (Matches(bridge.topic, topic)) {
        found = &bridge;
        break;
      }
    }
    bridge_of_.emplace(std::string(topic), found);
    return found;
  }

  // A local publish to a bridged topic: its payload, as it is, to the
  // bridge's channel, where the Redis application and the other nodes
  // (through their own bridge) get it. Returns 1, Redis being its
  // recipient, or 0 when Redis is away.
  uint64_t SendToBridge(const RedisBridge& bridge, const PublishOp& publish) {
    if (!joined_ ||
        Backlog(RedisLink::kPublisher) > options_.max_output_bytes) {
      ++stats_.messages_dropped;
      return 0;
    }
    std::string channel =
        FillChannel(bridge.channel, bridge.topic, publish.topic);
    Command(RedisLink::kPublisher, {"PUBLISH", channel, publish.payload});
    ++stats_.bridge_out;
    // Redis sends it back to this node's own bridge subscription, in order:
    // that copy is dropped on arrival.
    if (++bridge_echoes_ > kMaxCachedTopics * 8) {
      bridge_sent_.clear();
      bridge_echoes_ = 0;
    }
    bridge_sent_[std::move(channel)].push_back(absl::HashOf(publish.payload));
    return 1;
  }

  // A message on a bridged Redis channel (bridge `index` matched it).
  void OnBridgeMessage(size_t index, absl::string_view channel,
                       absl::string_view payload) {
    // The cluster's own channels are not the bridge's.
    if (absl::StartsWith(channel, cluster_channel_prefix_)) return;
    // Several bridges matching one channel: the first one delivers.
    for (size_t i = 0; i < index; ++i) {
      if (RedisGlobMatches(options_.bridges[i].channel, channel)) {
        ++stats_.duplicates_dropped;
        return;
      }
    }
    if (auto sent = bridge_sent_.find(channel); sent != bridge_sent_.end()) {
      if (!sent->second.empty() &&
          sent->second.front() == absl::HashOf(payload)) {
        sent->second.pop_front();
        if (sent->second.empty()) bridge_sent_.erase(sent);
        ++stats_.duplicates_dropped;  // this node's own, back
        return;
      }
    }
    const RedisBridge& bridge = options_.bridges[index];
    std::vector<absl::string_view> parts;
    if (!CaptureStars(bridge.channel, channel, parts) ||
        std::any_of(parts.begin(), parts.end(), [](absl::string_view p) {
          return p.empty() || p.find('*') != absl::string_view::npos;
        })) {
      ++stats_.malformed;
      return;
    }
    const std::string topic = FillTopic(bridge.topic, parts);
    if (!ValidateTopic(topic, TopicRole::kLiteral).ok()) {
      ++stats_.malformed;
      return;
    }
    PublishOp op;
    op.topic = topic;
    op.payload = payload;
    ++stats_.bridge_in;
    if (!broker_.PublishFromCluster(op, now_).ok()) ++stats_.malformed;
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
    RefreshClaims();
    next_heartbeat_ = now_ + options_.heartbeat;
    if (lost_since_join_) {
      lost_since_join_ = false;
      wire::BrokerEvent event;
      event.mutable_cluster_redis_back();
      broker_.ReportClusterEvent(std::move(event), now_);
    }
  }

  absl::Status OnPublisherReply(const redisReply& reply) {
    // Replies come in the order of the commands.
    const uint64_t index = publisher_replies_++;
    if (!waits_.empty() && waits_.front().index == index) {
      const Wait wait = std::move(waits_.front());
      waits_.pop_front();
      return OnRegistryReply(wait, reply);
    }
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
        OnBatch(payload);
      }
      return absl::OkStatus();
    }
    if (kind == "pmessage") {
      if (reply.elements < 4) {
        return absl::DataLossError("Redis sent a pmessage without a payload");
      }
      const absl::string_view channel = StringOf(reply.element[2]);
      if (ABSL_PREDICT_FALSE(!options_.bridges.empty())) {
        for (size_t i = 0; i < options_.bridges.size(); ++i) {
          if (options_.bridges[i].channel == first) {
            OnBridgeMessage(i, channel, StringOf(reply.element[3]));
            return absl::OkStatus();
          }
        }
      }
      if (first != CanonicalGlob(channel)) {
        // Another of this node's globs brings it too; that copy counts.
        ++stats_.duplicates_dropped;
        return absl::OkStatus();
      }
      OnBatch(StringOf(reply.element[3]));
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
      if (!absl::StartsWith(first, escaped_topic_prefix_)) {
        return absl::OkStatus();  // a bridge's glob
      }
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

  // A PUBLISH from another node: its batch of messages, in order.
  void OnBatch(absl::string_view bytes) {
    if (!arrived_.ParseFromArray(bytes.data(),
                                 static_cast<int>(bytes.size()))) {
      ++stats_.malformed;
      return;
    }
    for (const cluster::Envelope& envelope : arrived_.messages()) {
      OnEnvelope(envelope);
    }
    for (const cluster::ServiceCall& call : arrived_.calls()) OnCall(call);
    for (const cluster::ServiceAnswer& answer : arrived_.answers()) {
      OnAnswer(answer);
    }
  }

  // A request another node forwarded to a server of this node.
  void OnCall(const cluster::ServiceCall& call) {
    if (call.origin().empty() || call.origin() == options_.node ||
        !ValidateTopic(call.topic(), TopicRole::kLiteral).ok()) {
      ++stats_.malformed;
      return;
    }
    ++stats_.messages_in;
    ++stats_.requests_from_nodes;
    absl::InlinedVector<HeaderView, 4> headers;
    for (const cluster::Header& h : call.headers()) {
      headers.push_back({h.key(), h.value()});
    }
    ClusterCall c;
    c.call_id = call.call_id();
    c.topic = call.topic();
    c.payload = call.payload();
    c.headers = headers;
    c.timeout_ms = call.timeout_ms();
    c.requester_session_id = call.requester_session_id();
    broker_.RequestFromCluster(call.origin(), c, now_);
  }

  // What became of a request this node forwarded.
  void OnAnswer(const cluster::ServiceAnswer& answer) {
    auto it = calls_.find(answer.call_id());
    if (it == calls_.end()) return;  // already failed, or forgotten
    calls_.erase(it);
    ++stats_.messages_in;
    const wire::RequestStatus status =
        wire::RequestStatus_IsValid(answer.status())
            ? static_cast<wire::RequestStatus>(answer.status())
            : wire::SERVER_GONE;
    if (!answer.answered()) {
      broker_.AnswerFromCluster(answer.call_id(), status, answer.message(),
                                nullptr, now_);
      return;
    }
    wire::Respond respond;
    respond.set_status(status);
    respond.set_message(answer.message());
    respond.set_payload(answer.payload());
    for (const cluster::Header& h : answer.headers()) {
      wire::Header* header = respond.add_headers();
      header->set_key(h.key());
      header->set_value(h.value());
    }
    broker_.AnswerFromCluster(answer.call_id(), status, answer.message(),
                              &respond, now_);
  }

  void OnEnvelope(const cluster::Envelope& envelope) {
    if (envelope.topic().empty()) {
      ++stats_.malformed;
      return;
    }
    if (envelope.origin() == options_.node) {
      ++stats_.duplicates_dropped;  // this node's own message, back
      return;
    }
    PublishOp op;
    op.topic = envelope.topic();
    op.payload = envelope.payload();
    op.reply_to = envelope.reply_to();
    for (const cluster::Header& h : envelope.headers()) {
      op.headers.push_back(HeaderView{h.key(), h.value()});
    }
    op.has_header_block = envelope.has_header_block();
    if (!op.reply_to.empty()) {
      RememberReplyRoute(op.reply_to, envelope.origin());
    }
    ++stats_.messages_in;
    // A message the broker refuses (a limit this node has lower than the
    // origin's) is counted and dropped: it must not end the link.
    mode_ = Mode::kArrival;
    arrival_ = &envelope;
    const bool delivered = broker_.PublishFromCluster(op, now_).ok();
    mode_ = Mode::kIdle;
    arrival_ = nullptr;
    if (!delivered) ++stats_.malformed;
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
          InterestKey key(change.pattern(), change.queue_group());
          if (!change.added()) {
            node.interest.erase(key);
          } else if (ValidateTopic(key.first, TopicRole::kSubscription).ok()) {
            node.interest.insert(std::move(key));
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
      case cluster::Control::kService:
        if (node.synced && control_.version() == node.version + 1) {
          const cluster::ServiceChange& change = control_.service();
          if (!change.added()) {
            node.services.erase(change.topic());
          } else if (ValidateTopic(change.topic(), TopicRole::kLiteral).ok()) {
            node.services.insert(change.topic());
          }
          node.version = control_.version();
        } else {
          node.synced = false;
          RequestStateOf(node, name);
        }
        break;
      case cluster::Control::kState: {
        node.interest.clear();
        node.services.clear();
        for (const std::string& t : control_.state().services()) {
          if (ValidateTopic(t, TopicRole::kLiteral).ok()) {
            node.services.insert(t);
          }
        }
        for (const std::string& p : control_.state().patterns()) {
          if (ValidateTopic(p, TopicRole::kSubscription).ok()) {
            node.interest.emplace(p, "");
          }
        }
        for (const cluster::GroupInterest& g : control_.state().groups()) {
          if (ValidateTopic(g.pattern(), TopicRole::kSubscription).ok() &&
              !g.queue_group().empty()) {
            node.interest.emplace(g.pattern(), g.queue_group());
          }
        }
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
    nodes_.erase(it);
    stats_.nodes = nodes_.size();
    interested_.clear();
    wire::BrokerEvent event;
    wire::ClusterNodeLeft* left = event.mutable_cluster_node_left();
    left->set_node(name);
    left->set_reason(std::string(why));
    broker_.ReportClusterEvent(std::move(event), now_);
    FailCalls(name,
              absl::StrCat("the server's node left the cluster (", why, "): "));
  }

  // Which other nodes want `topic` (or, for a publish to a pattern, a topic
  // it intersects): remembered per topic until interest changes.
  const TopicInterest& InterestFor(absl::string_view topic, bool wildcard) {
    auto it = interested_.find(topic);
    if (it != interested_.end()) return it->second;
    if (interested_.size() >= kMaxCachedTopics) interested_.clear();
    TopicInterest interest;
    absl::btree_map<InterestKey, std::vector<std::string>> groups;
    for (const auto& [name, node] : nodes_) {
      bool plain = false;
      for (const InterestKey& key : node.interest) {
        if (key.second.empty() && plain) continue;
        if (!(wildcard ? Intersects(key.first, topic)
                       : Matches(key.first, topic))) {
          continue;
        }
        if (key.second.empty()) {
          plain = true;
          interest.plain.push_back(name);
        } else {
          groups[key].push_back(name);
        }
      }
    }
    for (auto& [key, nodes] : groups) {
      interest.groups.push_back({key, std::move(nodes)});
    }
    return interested_.emplace(std::string(topic), std::move(interest))
        .first->second;
  }

  // The next turn of queue group `key` (round robin over the nodes that
  // have members).
  uint64_t NextTurn(const InterestKey& key) {
    if (group_turns_.size() >= kMaxCachedTopics) group_turns_.clear();
    return group_turns_[key]++;
  }

  void Report() { broker_.ReportClusterStatistics(Figures()); }
  ClusterStatistics Figures() const {
    ClusterStatistics s = stats_;
    s.nodes = nodes_.size();
    s.redis_connected = joined_;
    s.local_patterns = local_interest_.size();
    s.remote_patterns = 0;
    for (const auto& [name, node] : nodes_) {
      s.remote_patterns += node.interest.size();
      s.remote_services += node.services.size();
    }
    s.local_services = owned_.size();
    return s;
  }

  Broker& broker_;
  const ClusterOptions options_;
  const std::string topic_prefix_;
  const std::string node_prefix_;
  const std::string control_channel_;
  const std::string own_channel_;
  // Every channel of the cluster starts with this; its globs with the
  // escaped topic prefix.
  const std::string cluster_channel_prefix_;
  const std::string escaped_topic_prefix_;
  absl::Time now_ = absl::InfinitePast();

  std::array<Link, 2> links_;
  bool control_confirmed_ = false;
  bool joined_ = false;
  bool lost_since_join_ = false;
  absl::Time next_heartbeat_ = absl::InfiniteFuture();

  // This node's interest: each pattern (and queue group) with its glob, how
  // many want each glob, and the globs Redis confirmed (in order: the first
  // that matches a channel takes its messages).
  absl::flat_hash_map<InterestKey, std::string> local_interest_;
  absl::flat_hash_map<std::string, uint32_t> wanted_globs_;
  absl::btree_set<std::string> active_globs_;
  absl::flat_hash_map<std::string, std::string> canonical_;
  uint64_t version_ = 0;

  // The other nodes, by name, and which of them want each topic published
  // here recently.
  absl::btree_map<std::string, RemoteNode> nodes_;
  absl::flat_hash_map<std::string, TopicInterest> interested_;
  // Round-robin positions of queue groups across nodes.
  absl::flat_hash_map<InterestKey, uint64_t> group_turns_;

  // TakesGroup's state: what it answers for; for a local publish, its topic
  // and the turns taken; for an arrival, the origin's choices.
  Mode mode_ = Mode::kIdle;
  std::string current_topic_;
  std::vector<std::pair<InterestKey, std::string>> pending_groups_;
  const cluster::Envelope* arrival_ = nullptr;
  // OnLocalPublish's: the nodes a message goes to, and its group choices.
  absl::btree_set<absl::string_view> targets_;
  std::vector<std::pair<const InterestKey*, const std::string*>> choices_;

  // Reply subjects of messages from other nodes, with their node; oldest
  // first in reply_order_ (with the expiry each entry was made with).
  absl::flat_hash_map<std::string, ReplyRoute> reply_routes_;
  std::deque<std::pair<std::string, absl::Time>> reply_order_;

  // Bridge mode: the bridge of each recently published topic (null: none),
  // and what this node sent to each bridged channel that Redis has not yet
  // sent back (hashes of the payloads, in order).
  absl::flat_hash_map<std::string, const RedisBridge*> bridge_of_;
  absl::flat_hash_map<std::string, std::deque<size_t>> bridge_sent_;
  size_t bridge_echoes_ = 0;

  ClusterStatistics stats_;
  // What statistics() last returned (stats_ with the gauges filled in).
  mutable ClusterStatistics figures_;
  // Reused so that a message allocates little.
  cluster::Envelope outgoing_;
  cluster::Control control_;
  cluster::Control wire_control_;
  std::string scratch_;
  // The messages gathered for one PUBLISH, and their channel.
  cluster::Batch batch_;
  std::string batch_channel_;
  size_t batch_bytes_ = 0;
  // Messages that arrived, a batch at a time.
  cluster::Batch arrived_;

  // Services: the topics this node's servers hold in the registry; the
  // registry operations waiting for their reply on the publisher link (by
  // the index of their command there); requests forwarded to other nodes,
  // by call id, until answered or forgotten.
  const std::string registry_prefix_;
  const std::string holder_;
  const std::string holder_prefix_;
  const std::string claim_lifetime_ms_;
  absl::btree_set<std::string, std::less<>> owned_;
  std::deque<Wait> waits_;
  uint64_t publisher_sent_ = 0;
  uint64_t publisher_replies_ = 0;
  absl::flat_hash_map<uint64_t, Call> calls_;
  std::string last_owner_;
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
  for (const RedisBridge& bridge : options.bridges) {
    absl::StatusOr<RedisBridge> parsed =
        ParseRedisBridge(absl::StrCat(bridge.channel, "=", bridge.topic));
    if (!parsed.ok()) return parsed.status();
    if (absl::StartsWith(bridge.channel, absl::StrCat(options.prefix, ":")) ||
        RedisGlobMatches(bridge.channel,
                         absl::StrCat(options.prefix, ":t:x"))) {
      return absl::InvalidArgumentError(
          absl::StrCat("bridge channel '", bridge.channel,
                       "' would take the cluster's own channels (prefix '",
                       options.prefix, ":')"));
    }
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
absl::string_view ClusterRouter::PendingOutput(RedisLink link) {
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
void ClusterRouter::OnLocalInterest(absl::string_view pattern,
                                    absl::string_view queue_group, bool added) {
  impl_->OnLocalInterest(pattern, queue_group, added);
}
void ClusterRouter::BeginPublish(const PublishOp& publish) {
  impl_->BeginPublish(publish);
}
bool ClusterRouter::TakesGroup(absl::string_view pattern,
                               absl::string_view queue_group) {
  return impl_->TakesGroup(pattern, queue_group);
}
uint64_t ClusterRouter::OnLocalPublish(const PublishOp& publish) {
  return impl_->OnLocalPublish(publish);
}
bool ClusterRouter::ClaimService(absl::string_view topic) {
  return impl_->ClaimService(topic);
}
void ClusterRouter::ReleaseService(absl::string_view topic) {
  impl_->ReleaseService(topic);
}
absl::string_view ClusterRouter::ForwardRequest(const ClusterCall& call) {
  return impl_->ForwardRequest(call);
}
void ClusterRouter::AnswerRequest(absl::string_view origin, uint64_t call_id,
                                  wire::RequestStatus status,
                                  absl::string_view message,
                                  const wire::Respond* respond) {
  impl_->AnswerRequest(origin, call_id, status, message, respond);
}

}  // namespace manifold
