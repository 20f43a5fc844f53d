// soak_driver: the client side of bench/soak.sh. Against a running manifoldd
// it keeps, for a bounded time:
//
//   - publishers, each sending numbered messages on its own stream at a
//     steady rate ("soak/stream/<n>");
//   - healthy subscribers to every stream, which check that each message
//     arrives exactly once and in order;
//   - about --churn_connections short-lived clients that connect, subscribe,
//     publish now and then and leave after a random lifetime, in each of the
//     ways a client can leave (close, unsubscribe and close, reset,
//     half-close, hang up in the middle of a frame), replaced as they go;
//
// and samples the broker's resident memory (/proc/<pid>/status) every
// --sample_interval. At the end it prints the figures and exits 0 only if no
// healthy subscriber lost or reordered a message, nobody got an error or was
// cut off, and the broker's memory stayed flat after the warm-up.
//
//   soak_driver --broker=127.0.0.1:24387 --broker_pid=1234 --duration=10m
//
// Loopback only; every count and wait is bounded; one thread, one epoll loop.

#include <sys/epoll.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <queue>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "bench/soak/rss_series.h"
#include "bench/soak/soak_connection.h"
#include "core/manifold.pb.h"
#include "transports/process/resident_memory.h"
#include "transports/sockets/endpoint.h"
#include "transports/sockets/unique_fd.h"

ABSL_FLAG(std::string, broker, "",
          "The broker's native TCP listener, HOST:PORT (loopback).");
ABSL_FLAG(int, broker_pid, 0, "manifoldd's PID, to sample its memory.");
ABSL_FLAG(absl::Duration, duration, absl::Minutes(10),
          "How long the load runs (then a drain of at most 10 s).");
ABSL_FLAG(int, churn_connections, 1000,
          "Short-lived clients connected at any one time.");
ABSL_FLAG(absl::Duration, min_lifetime, absl::Seconds(1),
          "Shortest life of a churning client.");
ABSL_FLAG(absl::Duration, max_lifetime, absl::Seconds(10),
          "Longest life of a churning client.");
ABSL_FLAG(int, publishers, 4, "Publishers, one stream each.");
ABSL_FLAG(int, publish_rate, 100, "Messages per second per publisher.");
ABSL_FLAG(int, healthy_subscribers, 4,
          "Subscribers to every stream that check sequence numbers.");
ABSL_FLAG(int, payload_bytes, 256, "Size of each stream message.");
ABSL_FLAG(int, churn_publish_rate, 500,
          "Messages per second published by churning clients, in all.");
ABSL_FLAG(double, churn_stream_share, 0.02,
          "Share of churning clients that also subscribe to the streams.");
ABSL_FLAG(absl::Duration, sample_interval, absl::Seconds(1),
          "How often the broker's memory is sampled.");
ABSL_FLAG(absl::Duration, warmup, absl::Minutes(1),
          "Memory before this (at most a fifth of the run) is not judged.");
ABSL_FLAG(int64_t, max_rss_growth_kib, 8192,
          "Most the broker's memory may grow after the warm-up, in KiB, "
          "from first to last sample and along the trend.");
ABSL_FLAG(uint64_t, seed, 1, "Seed for lifetimes, topics and ways to leave.");

namespace manifold::soak {
namespace {

constexpr int kChurnTopics = 64;
// At most this many churning clients connecting at once, and opened per
// loop turn: a steady trickle rather than a SYN flood.
constexpr int kMaxConnecting = 128;
constexpr int kMaxOpensPerTurn = 32;
// A half-closed client waits this long for the broker to close its side.
constexpr absl::Duration kHalfCloseWait = absl::Seconds(5);
constexpr absl::Duration kDrainLimit = absl::Seconds(10);

enum class Role { kPublisher, kHealthy, kChurner };

enum class Leave {
  kClose,
  kUnsubscribeThenClose,
  kReset,
  kHalfClose,
  kMidFrame
};
constexpr int kLeaveKinds = 5;
const char* const kLeaveNames[kLeaveKinds] = {
    "close", "unsubscribe+close", "reset", "half-close", "mid-frame"};

struct Config {
  absl::Duration duration;
  int churn_connections;
  absl::Duration min_lifetime, max_lifetime;
  int publishers, publish_rate, healthy_subscribers, payload_bytes;
  int churn_publish_rate;
  double churn_stream_share;
  absl::Duration sample_interval, warmup;
  int64_t max_rss_growth_kib;
  uint64_t seed;
  pid_t broker_pid;
};

struct Peer {
  uint64_t id = 0;
  Role role = Role::kChurner;
  std::unique_ptr<SoakConnection> connection;
  bool welcomed = false;
  bool want_write = false;  // EPOLLOUT is registered
  bool leaving = false;     // half-closed: waiting for the broker's close
  absl::Time give_up_at;
  std::vector<uint64_t> subscription_ids;
  // Publishers: the stream and how many were sent.
  int stream = -1;
  uint64_t published = 0;
  // Healthy subscribers: the next number expected on each stream.
  std::vector<uint64_t> expected;
  uint64_t received = 0;
};

struct Totals {
  uint64_t churn_opened = 0;
  uint64_t churn_welcomed = 0;
  uint64_t churn_left[kLeaveKinds] = {};
  uint64_t connect_failures = 0;
  uint64_t cut_by_broker = 0;  // closed by the broker without being asked
  uint64_t churn_publishes = 0;
  uint64_t churn_deliveries = 0;
  uint64_t lost = 0;
  uint64_t out_of_order = 0;
  absl::Duration max_latency;
  std::map<std::string, uint64_t> errors;  // by code
  std::vector<std::string> problems;       // the first few, in words
  int max_open_churners = 0;
};

int64_t UnixNanos() { return absl::ToUnixNanos(absl::Now()); }

class Soak {
 public:
  Soak(Config config, SocketAddress address)
      : config_(config), address_(address), rng_(config.seed) {}

  absl::Status Setup();
  int Run();

 private:
  // --- Connections ---
  absl::StatusOr<Peer*> Open(Role role);
  void Remove(Peer& peer);
  void UpdateInterest(Peer& peer);
  void Problem(std::string what);

  // --- Work each turn ---
  void Publish(absl::Time now);
  void Churn(absl::Time now);
  void LeaveOne(Peer& peer, absl::Time now);
  void Poll(absl::Duration timeout);
  void OnEvent(Peer& peer, uint32_t events);
  void OnMessage(Peer& peer, const wire::ServerMessage& m);
  void OnDelivery(Peer& peer, const wire::Deliver& d);
  void FlushAll();
  void Sample(absl::Time now, bool force);
  void Progress(absl::Time now);

  bool HealthyCaughtUp() const;
  int Report();

  const Config config_;
  const SocketAddress address_;
  std::mt19937_64 rng_;
  UniqueFd epoll_;
  uint64_t last_id_ = 0;
  absl::flat_hash_map<uint64_t, std::unique_ptr<Peer>> peers_;
  std::vector<Peer*> publishers_;
  std::vector<Peer*> healthy_;
  std::vector<uint64_t> churners_;  // ids of open (not leaving) churners
  using Departure = std::pair<absl::Time, uint64_t>;
  std::priority_queue<Departure, std::vector<Departure>, std::greater<>>
      departures_;
  int connecting_ = 0;

  absl::Time start_;
  absl::Time publish_start_;
  double churn_publish_credit_ = 0;
  absl::Time last_churn_publish_;
  absl::Time next_sample_;
  absl::Time next_progress_;
  RssSeries rss_;
  int64_t rss_after_churn_ = -1;
  absl::Duration ran_for_;
  bool stopping_ = false;
  Totals totals_;
};

// --- Connections ------------------------------------------------------------

absl::StatusOr<Peer*> Soak::Open(Role role) {
  absl::StatusOr<std::unique_ptr<SoakConnection>> connection =
      SoakConnection::Start(address_);
  if (!connection.ok()) return connection.status();
  auto peer = std::make_unique<Peer>();
  peer->id = ++last_id_;
  peer->role = role;
  peer->connection = *std::move(connection);
  epoll_event event{};
  event.events = EPOLLIN | EPOLLRDHUP | EPOLLOUT;  // EPOLLOUT: connected
  event.data.u64 = peer->id;
  peer->want_write = true;
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, peer->connection->fd(),
                  &event) != 0) {
    return absl::InternalError(absl::StrCat("epoll_ctl: ", strerror(errno)));
  }
  ++connecting_;

  const char* prefix = role == Role::kPublisher ? "publisher"
                       : role == Role::kHealthy ? "healthy"
                                                : "churn";
  wire::ClientMessage hello;
  hello.mutable_hello()->set_protocol_version(wire::PROTOCOL_VERSION_1);
  hello.mutable_hello()->set_client_name(absl::StrCat(prefix, "-", peer->id));
  absl::Status queued = peer->connection->Queue(hello);
  auto subscribe = [&](std::string pattern) {
    wire::ClientMessage m;
    m.mutable_subscribe()->set_op_id(peer->subscription_ids.size() + 1);
    m.mutable_subscribe()->set_pattern(std::move(pattern));
    queued.Update(peer->connection->Queue(m));
    peer->subscription_ids.push_back(0);  // its id comes with the Ack
  };
  if (role == Role::kHealthy) {
    subscribe("soak/stream/*");
    peer->expected.assign(config_.publishers, 1);
  } else if (role == Role::kChurner) {
    const int topic = static_cast<int>(rng_() % kChurnTopics);
    // A few watch every churn topic: wide fan-out that comes and goes.
    subscribe(rng_() % 50 == 0 ? "soak/churn/**"
                               : absl::StrCat("soak/churn/", topic));
    std::bernoulli_distribution streams(config_.churn_stream_share);
    if (streams(rng_)) subscribe("soak/stream/*");
  }
  if (!queued.ok()) return queued;
  Peer* raw = peer.get();
  peers_[raw->id] = std::move(peer);
  return raw;
}

void Soak::Remove(Peer& peer) {
  if (!peer.connection->connected()) --connecting_;
  // Closing the descriptor takes it out of the epoll set.
  const uint64_t id = peer.id;
  peers_.erase(id);
}

void Soak::UpdateInterest(Peer& peer) {
  const bool want =
      peer.connection->has_output() || !peer.connection->connected();
  if (want == peer.want_write) return;
  epoll_event event{};
  event.events = EPOLLIN | EPOLLRDHUP | (want ? uint32_t{EPOLLOUT} : 0u);
  event.data.u64 = peer.id;
  ::epoll_ctl(epoll_.get(), EPOLL_CTL_MOD, peer.connection->fd(), &event);
  peer.want_write = want;
}

void Soak::Problem(std::string what) {
  if (totals_.problems.size() < 20) totals_.problems.push_back(std::move(what));
}

// --- Setup -------------------------------------------------------------------

absl::Status Soak::Setup() {
  epoll_.reset(::epoll_create1(EPOLL_CLOEXEC));
  if (!epoll_.valid()) return absl::InternalError("epoll_create1 failed");
  start_ = absl::Now();
  next_sample_ = start_;
  next_progress_ = start_;
  for (int i = 0; i < config_.healthy_subscribers; ++i) {
    absl::StatusOr<Peer*> p = Open(Role::kHealthy);
    if (!p.ok()) return p.status();
    healthy_.push_back(*p);
  }
  for (int i = 0; i < config_.publishers; ++i) {
    absl::StatusOr<Peer*> p = Open(Role::kPublisher);
    if (!p.ok()) return p.status();
    (*p)->stream = i;
    publishers_.push_back(*p);
  }
  // Every subscription must be in place before the first message.
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  auto ready = [&] {
    for (Peer* p : healthy_) {
      for (uint64_t id : p->subscription_ids) {
        if (id == 0) return false;
      }
    }
    for (Peer* p : publishers_) {
      if (!p->welcomed) return false;
    }
    return true;
  };
  while (!ready()) {
    if (absl::Now() > deadline || !totals_.problems.empty()) {
      return absl::UnavailableError(absl::StrCat(
          "the broker did not welcome the publishers and subscribers: ",
          totals_.problems.empty() ? "timed out" : totals_.problems.front()));
    }
    FlushAll();
    Poll(absl::Milliseconds(10));
  }
  return absl::OkStatus();
}

// --- The loop
// ------------------------------------------------------------------

int Soak::Run() {
  publish_start_ = absl::Now();
  last_churn_publish_ = publish_start_;
  const absl::Time end = publish_start_ + config_.duration;
  std::printf("soak: running for %s\n",
              absl::FormatDuration(config_.duration).c_str());
  while (true) {
    const absl::Time now = absl::Now();
    if (now >= end) break;
    Publish(now);
    Churn(now);
    FlushAll();
    Sample(now, /*force=*/false);
    Progress(now);
    Poll(absl::Milliseconds(2));
  }
  ran_for_ = absl::Now() - publish_start_;
  Sample(absl::Now(), /*force=*/true);

  // Stop: every churning client leaves, publishers stop; drain the streams.
  stopping_ = true;
  for (uint64_t id : std::vector<uint64_t>(churners_)) {
    auto it = peers_.find(id);
    if (it != peers_.end()) Remove(*it->second);
  }
  churners_.clear();
  for (auto it = peers_.begin(); it != peers_.end();) {
    auto next = std::next(it);
    if (it->second->role == Role::kChurner) peers_.erase(it);
    it = next;
  }
  const absl::Time drain_end = absl::Now() + kDrainLimit;
  while (!HealthyCaughtUp() && absl::Now() < drain_end) {
    FlushAll();
    Poll(absl::Milliseconds(10));
  }
  // Memory once the churn is gone and the broker has had a moment.
  for (const absl::Time settle = absl::Now() + absl::Seconds(2);
       absl::Now() < settle;) {
    Poll(absl::Milliseconds(50));
  }
  if (absl::StatusOr<int64_t> rss = ReadResidentKib(config_.broker_pid);
      rss.ok()) {
    rss_after_churn_ = *rss;
  }
  return Report();
}

void Soak::Publish(absl::Time now) {
  if (stopping_) return;
  const double seconds = absl::ToDoubleSeconds(now - publish_start_);
  const uint64_t due = static_cast<uint64_t>(seconds * config_.publish_rate);
  const std::string padding(std::max(0, config_.payload_bytes - 40),
                            'x');  // "stream seq nanos "
  for (Peer* p : publishers_) {
    while (p->published < due) {
      ++p->published;
      wire::ClientMessage m;
      m.mutable_publish()->set_op_id(p->published);
      m.mutable_publish()->set_topic(absl::StrCat("soak/stream/", p->stream));
      m.mutable_publish()->set_payload(absl::StrCat(
          p->stream, " ", p->published, " ", UnixNanos(), " ", padding));
      if (absl::Status s = p->connection->Queue(m); !s.ok()) {
        Problem(absl::StrCat("publisher ", p->stream, ": ", s.message()));
        --p->published;
        break;
      }
    }
  }
  // Churning clients publish on the churn topics, at their own rate.
  churn_publish_credit_ += absl::ToDoubleSeconds(now - last_churn_publish_) *
                           config_.churn_publish_rate;
  last_churn_publish_ = now;
  while (churn_publish_credit_ >= 1 && !churners_.empty()) {
    churn_publish_credit_ -= 1;
    auto it = peers_.find(churners_[rng_() % churners_.size()]);
    if (it == peers_.end() || !it->second->welcomed) continue;
    Peer& p = *it->second;
    wire::ClientMessage m;
    m.mutable_publish()->set_topic(
        absl::StrCat("soak/churn/", rng_() % kChurnTopics));
    m.mutable_publish()->set_payload(std::string(64, 'c'));
    if (p.connection->Queue(m).ok()) ++totals_.churn_publishes;
  }
  churn_publish_credit_ = std::min(churn_publish_credit_, 1000.0);
}

void Soak::Churn(absl::Time now) {
  // Departures that are due.
  while (!departures_.empty() && departures_.top().first <= now) {
    const uint64_t id = departures_.top().second;
    departures_.pop();
    auto it = peers_.find(id);
    if (it != peers_.end() && !it->second->leaving) LeaveOne(*it->second, now);
  }
  // Half-closed clients the broker never closed.
  for (auto it = peers_.begin(); it != peers_.end();) {
    auto next = std::next(it);
    Peer& p = *it->second;
    if (p.leaving && now >= p.give_up_at) {
      Problem(absl::StrCat("churn-", p.id,
                           ": the broker did not close a half-closed link"));
      Remove(p);
    }
    it = next;
  }
  // Newcomers, to keep the population.
  std::uniform_int_distribution<int64_t> lifetime_ms(
      absl::ToInt64Milliseconds(config_.min_lifetime),
      absl::ToInt64Milliseconds(config_.max_lifetime));
  for (int opened = 0;
       opened < kMaxOpensPerTurn &&
       static_cast<int>(churners_.size()) < config_.churn_connections &&
       connecting_ < kMaxConnecting;
       ++opened) {
    absl::StatusOr<Peer*> p = Open(Role::kChurner);
    if (!p.ok()) {
      ++totals_.connect_failures;
      Problem(
          absl::StrCat("opening a churning client: ", p.status().message()));
      break;
    }
    ++totals_.churn_opened;
    churners_.push_back((*p)->id);
    departures_.push({now + absl::Milliseconds(lifetime_ms(rng_)), (*p)->id});
  }
  totals_.max_open_churners =
      std::max(totals_.max_open_churners, static_cast<int>(churners_.size()));
}

void Soak::LeaveOne(Peer& peer, absl::Time now) {
  churners_.erase(std::remove(churners_.begin(), churners_.end(), peer.id),
                  churners_.end());
  std::uniform_int_distribution<int> pick(0, 99);
  const int roll = pick(rng_);
  Leave how = roll < 40   ? Leave::kClose
              : roll < 55 ? Leave::kUnsubscribeThenClose
              : roll < 75 ? Leave::kReset
              : roll < 90 ? Leave::kHalfClose
                          : Leave::kMidFrame;
  if (!peer.connection->connected()) how = Leave::kClose;
  ++totals_.churn_left[static_cast<int>(how)];
  SoakConnection& c = *peer.connection;
  switch (how) {
    case Leave::kUnsubscribeThenClose:
      for (size_t i = 0; i < peer.subscription_ids.size(); ++i) {
        if (peer.subscription_ids[i] == 0) continue;
        wire::ClientMessage m;
        m.mutable_unsubscribe()->set_op_id(100 + i);
        m.mutable_unsubscribe()->set_subscription_id(peer.subscription_ids[i]);
        c.Queue(m).IgnoreError();
      }
      [[fallthrough]];
    case Leave::kClose:
      c.Flush().IgnoreError();
      Remove(peer);
      return;
    case Leave::kReset:
      c.Reset();
      Remove(peer);
      return;
    case Leave::kHalfClose:
      c.Flush().IgnoreError();
      c.ShutdownWrite();
      peer.leaving = true;
      peer.give_up_at = now + kHalfCloseWait;
      return;
    case Leave::kMidFrame: {
      wire::ClientMessage m;
      m.mutable_publish()->set_topic("soak/churn/0");
      m.mutable_publish()->set_payload(std::string(200, 'm'));
      const std::string frame = EncodeFrame(m);
      c.QueueRaw(absl::string_view(frame).substr(0, frame.size() / 2))
          .IgnoreError();
      c.Flush().IgnoreError();
      Remove(peer);
      return;
    }
  }
}

void Soak::FlushAll() {
  for (auto& [id, peer] : peers_) {
    if (!peer->connection->has_output() || !peer->connection->connected()) {
      continue;
    }
    if (absl::Status s = peer->connection->Flush(); !s.ok()) {
      // Reported when the read side sees the close.
      continue;
    }
    UpdateInterest(*peer);
  }
}

void Soak::Poll(absl::Duration timeout) {
  epoll_event events[256];
  const int n =
      ::epoll_wait(epoll_.get(), events, 256,
                   static_cast<int>(absl::ToInt64Milliseconds(timeout)));
  for (int i = 0; i < n; ++i) {
    auto it = peers_.find(events[i].data.u64);
    if (it == peers_.end()) continue;  // removed earlier in this batch
    OnEvent(*it->second, events[i].events);
  }
}

void Soak::OnEvent(Peer& peer, uint32_t events) {
  SoakConnection& c = *peer.connection;
  if (!c.connected()) {
    if ((events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) == 0) return;
    if (absl::Status s = c.FinishConnect(); !s.ok()) {
      ++totals_.connect_failures;
      Problem(absl::StrCat("connecting: ", s.message()));
      if (peer.role == Role::kChurner) {
        churners_.erase(
            std::remove(churners_.begin(), churners_.end(), peer.id),
            churners_.end());
      }
      Remove(peer);
      return;
    }
    --connecting_;
  }
  if (events & EPOLLOUT) {
    c.Flush().IgnoreError();
    UpdateInterest(peer);
  }
  if ((events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) == 0) return;
  std::vector<wire::ServerMessage> messages;
  absl::StatusOr<bool> open = c.Read(messages);
  for (const wire::ServerMessage& m : messages) OnMessage(peer, m);
  if (!open.ok()) {
    Problem(
        absl::StrCat("decoding from the broker: ", open.status().message()));
  }
  if (open.ok() && *open) {
    UpdateInterest(peer);
    return;
  }
  // The broker closed the connection.
  if (!peer.leaving) {
    ++totals_.cut_by_broker;
    Problem(
        absl::StrCat(peer.role == Role::kChurner ? "churn-" : "stream client ",
                     peer.id, " was closed by the broker"));
    if (peer.role == Role::kChurner) {
      churners_.erase(std::remove(churners_.begin(), churners_.end(), peer.id),
                      churners_.end());
    }
  }
  if (peer.role != Role::kChurner) {
    // Keep the record (and the figures) of stream clients; just stop
    // watching the socket.
    peer.connection->Close();
    peer.welcomed = false;
    return;
  }
  Remove(peer);
}

void Soak::OnMessage(Peer& peer, const wire::ServerMessage& m) {
  switch (m.kind_case()) {
    case wire::ServerMessage::kWelcome:
      peer.welcomed = true;
      if (peer.role == Role::kChurner) ++totals_.churn_welcomed;
      return;
    case wire::ServerMessage::kAck: {
      const uint64_t op = m.ack().op_id();
      if (op >= 1 && op <= peer.subscription_ids.size()) {
        peer.subscription_ids[op - 1] = m.ack().subscription_id();
      }
      return;
    }
    case wire::ServerMessage::kPing: {
      wire::ClientMessage pong;
      pong.mutable_pong()->set_op_id(m.ping().op_id());
      peer.connection->Queue(pong).IgnoreError();
      return;
    }
    case wire::ServerMessage::kDeliver:
      OnDelivery(peer, m.deliver());
      return;
    case wire::ServerMessage::kError:
      ++totals_.errors[wire::Code_Name(m.error().code())];
      Problem(absl::StrCat("client ", peer.id, " got ",
                           wire::Code_Name(m.error().code()), ": ",
                           m.error().message()));
      return;
    default:
      Problem(absl::StrCat("client ", peer.id, " got ", m.ShortDebugString()));
      return;
  }
}

void Soak::OnDelivery(Peer& peer, const wire::Deliver& d) {
  if (peer.role != Role::kHealthy) {
    ++totals_.churn_deliveries;
    return;
  }
  std::vector<absl::string_view> fields =
      absl::StrSplit(d.payload(), absl::MaxSplits(' ', 3));
  int stream = -1;
  uint64_t sequence = 0;
  int64_t sent_nanos = 0;
  if (fields.size() < 3 || !absl::SimpleAtoi(fields[0], &stream) ||
      !absl::SimpleAtoi(fields[1], &sequence) ||
      !absl::SimpleAtoi(fields[2], &sent_nanos) || stream < 0 ||
      stream >= config_.publishers) {
    Problem(absl::StrCat("healthy-", peer.id, ": unreadable message on ",
                         d.topic()));
    return;
  }
  ++peer.received;
  uint64_t& expected = peer.expected[stream];
  if (sequence != expected) {
    if (sequence > expected) totals_.lost += sequence - expected;
    ++totals_.out_of_order;
    Problem(absl::StrCat("healthy-", peer.id, ": stream ", stream,
                         " expected #", expected, ", got #", sequence));
  }
  expected = std::max(expected, sequence + 1);
  totals_.max_latency = std::max(totals_.max_latency,
                                 absl::Nanoseconds(UnixNanos() - sent_nanos));
}

bool Soak::HealthyCaughtUp() const {
  for (const Peer* h : healthy_) {
    if (h->connection->fd() < 0) continue;  // closed; already reported
    for (const Peer* p : publishers_) {
      if (h->expected[p->stream] != p->published + 1) return false;
    }
  }
  return true;
}

// --- Memory and progress
// ------------------------------------------------------

void Soak::Sample(absl::Time now, bool force) {
  if (!force && now < next_sample_) return;
  next_sample_ = now + config_.sample_interval;
  absl::StatusOr<int64_t> rss = ReadResidentKib(config_.broker_pid);
  if (!rss.ok()) {
    Problem(
        absl::StrCat("reading the broker's memory: ", rss.status().message()));
    return;
  }
  rss_.Add(now - publish_start_, *rss);
}

void Soak::Progress(absl::Time now) {
  if (now < next_progress_) return;
  const absl::Duration every =
      std::max(absl::Seconds(10), config_.duration / 20);
  next_progress_ = now + every;
  uint64_t published = 0;
  for (const Peer* p : publishers_) published += p->published;
  const int64_t rss = rss_.samples().empty() ? 0 : rss_.samples().back().kib;
  std::printf("  t=%5.0fs  churning clients %4zu  opened %8" PRIu64
              "  stream messages %9" PRIu64 "  broker RSS %7" PRId64 " KiB\n",
              absl::ToDoubleSeconds(now - publish_start_), churners_.size(),
              totals_.churn_opened, published, rss);
  std::fflush(stdout);
}

// --- The figures
// --------------------------------------------------------------

int Soak::Report() {
  const absl::Duration warmup = std::min(config_.warmup, config_.duration / 5);
  const RssSeries::Summary all = rss_.Summarize(absl::ZeroDuration());
  const RssSeries::Summary judged = rss_.Summarize(warmup);
  uint64_t published = 0;
  for (const Peer* p : publishers_) published += p->published;
  const double minutes = absl::ToDoubleMinutes(judged.to - judged.from);
  const int64_t growth = judged.last_kib - judged.first_kib;
  const double trend_growth = judged.slope_kib_per_minute * minutes;
  const bool memory_flat = growth <= config_.max_rss_growth_kib &&
                           trend_growth <= config_.max_rss_growth_kib;
  bool everything_arrived = true;
  for (const Peer* h : healthy_) {
    for (const Peer* p : publishers_) {
      if (h->expected[p->stream] != p->published + 1) {
        everything_arrived = false;
      }
    }
  }

  std::printf("\nsoak: %.0f s of load\n", absl::ToDoubleSeconds(ran_for_));
  std::printf("connections: %" PRIu64
              " churning clients opened (%d at a time, "
              "lifetimes %s-%s), %" PRIu64 " welcomed, %" PRIu64
              " connect failures, %" PRIu64 " cut by the broker\n",
              totals_.churn_opened, config_.churn_connections,
              absl::FormatDuration(config_.min_lifetime).c_str(),
              absl::FormatDuration(config_.max_lifetime).c_str(),
              totals_.churn_welcomed, totals_.connect_failures,
              totals_.cut_by_broker);
  std::printf("  churn rate %.0f connections/s; left by",
              totals_.churn_opened / absl::ToDoubleSeconds(ran_for_));
  for (int i = 0; i < kLeaveKinds; ++i) {
    std::printf("%s %s %" PRIu64, i == 0 ? "" : ",", kLeaveNames[i],
                totals_.churn_left[i]);
  }
  std::printf("\n");
  std::printf("publishers: %d x %d msg/s: %" PRIu64
              " stream messages; churning clients published %" PRIu64
              " and received %" PRIu64 "\n",
              config_.publishers, config_.publish_rate, published,
              totals_.churn_publishes, totals_.churn_deliveries);
  for (const Peer* h : healthy_) {
    std::printf("healthy subscriber %" PRIu64 ": received %" PRIu64
                " of %" PRIu64 "\n",
                h->id, h->received, published);
  }
  std::printf("  lost %" PRIu64 ", out of order %" PRIu64 ", max latency %s\n",
              totals_.lost, totals_.out_of_order,
              absl::FormatDuration(
                  absl::Trunc(totals_.max_latency, absl::Microseconds(100)))
                  .c_str());
  std::printf(
      "broker RSS (KiB), %zu samples every %s over the whole run: first "
      "%" PRId64 ", last %" PRId64 ", min %" PRId64 ", max %" PRId64 "\n",
      all.samples, absl::FormatDuration(config_.sample_interval).c_str(),
      all.first_kib, all.last_kib, all.min_kib, all.max_kib);
  std::printf("  after the %s warm-up (%zu samples): first %" PRId64
              ", last %" PRId64 " (%+" PRId64 "), min %" PRId64 ", max %" PRId64
              ", trend %+.1f KiB/min (%+.0f KiB over %.1f "
              "min); allowed growth %" PRId64 " KiB\n",
              absl::FormatDuration(warmup).c_str(), judged.samples,
              judged.first_kib, judged.last_kib, growth, judged.min_kib,
              judged.max_kib, judged.slope_kib_per_minute, trend_growth,
              minutes, config_.max_rss_growth_kib);
  std::printf("  after the churning clients left: %" PRId64 "\n",
              rss_after_churn_);
  if (!totals_.errors.empty()) {
    std::printf("errors received:");
    for (const auto& [code, n] : totals_.errors) {
      std::printf(" %s %" PRIu64, code.c_str(), n);
    }
    std::printf("\n");
  }
  for (const std::string& p : totals_.problems) {
    std::printf("problem: %s\n", p.c_str());
  }

  const bool pass = memory_flat && everything_arrived && totals_.lost == 0 &&
                    totals_.out_of_order == 0 && totals_.problems.empty();
  std::printf("result: %s%s%s\n", pass ? "PASS" : "FAIL",
              memory_flat ? "" : " (memory grew)",
              everything_arrived ? "" : " (messages missing)");
  return pass ? 0 : 1;
}

int Main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "soak load for a running manifoldd; see bench/soak.sh.\n"
      "  soak_driver --broker=127.0.0.1:PORT --broker_pid=PID "
      "[--duration=10m]");
  absl::ParseCommandLine(argc, argv);
  absl::StatusOr<Endpoint> endpoint =
      ParseTcpEndpoint(absl::GetFlag(FLAGS_broker));
  if (!endpoint.ok() || absl::GetFlag(FLAGS_broker_pid) <= 0) {
    std::fprintf(stderr,
                 "soak_driver: give --broker=HOST:PORT and --broker_pid\n");
    return 2;
  }
  absl::StatusOr<SocketAddress> address = Resolve(*endpoint);
  if (!address.ok()) {
    std::fprintf(stderr, "soak_driver: %s\n",
                 std::string(address.status().message()).c_str());
    return 2;
  }
  Config config{
      .duration = absl::GetFlag(FLAGS_duration),
      .churn_connections = absl::GetFlag(FLAGS_churn_connections),
      .min_lifetime = absl::GetFlag(FLAGS_min_lifetime),
      .max_lifetime = absl::GetFlag(FLAGS_max_lifetime),
      .publishers = std::max(1, absl::GetFlag(FLAGS_publishers)),
      .publish_rate = absl::GetFlag(FLAGS_publish_rate),
      .healthy_subscribers = absl::GetFlag(FLAGS_healthy_subscribers),
      .payload_bytes = absl::GetFlag(FLAGS_payload_bytes),
      .churn_publish_rate = absl::GetFlag(FLAGS_churn_publish_rate),
      .churn_stream_share = absl::GetFlag(FLAGS_churn_stream_share),
      .sample_interval = absl::GetFlag(FLAGS_sample_interval),
      .warmup = absl::GetFlag(FLAGS_warmup),
      .max_rss_growth_kib = absl::GetFlag(FLAGS_max_rss_growth_kib),
      .seed = absl::GetFlag(FLAGS_seed),
      .broker_pid = static_cast<pid_t>(absl::GetFlag(FLAGS_broker_pid)),
  };
  rlimit files{};
  getrlimit(RLIMIT_NOFILE, &files);
  const int needed = config.churn_connections + config.publishers +
                     config.healthy_subscribers + kMaxConnecting + 64;
  std::printf(
      "soak: broker %s (pid %d); %d churning clients, %d publishers x "
      "%d msg/s, %d healthy subscribers; descriptor limit %llu "
      "(needs about %d)\n",
      endpoint->ToString().c_str(), config.broker_pid, config.churn_connections,
      config.publishers, config.publish_rate, config.healthy_subscribers,
      static_cast<unsigned long long>(files.rlim_cur), needed);
  if (files.rlim_cur < static_cast<rlim_t>(needed)) {
    std::fprintf(stderr,
                 "soak_driver: raise the descriptor limit (ulimit -n)\n");
    return 2;
  }
  Soak soak(config, *address);
  if (absl::Status s = soak.Setup(); !s.ok()) {
    std::fprintf(stderr, "soak_driver: %s\n", std::string(s.message()).c_str());
    return 1;
  }
  return soak.Run();
}

}  // namespace
}  // namespace manifold::soak

int main(int argc, char** argv) { return manifold::soak::Main(argc, argv); }
