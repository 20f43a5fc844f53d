#include "client/load/bayeux_load.h"

#ifdef MANIFOLD_HAVE_BAYEUX_LOAD

#include <sys/epoll.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "client/load/bayeux_reply.h"
#include "client/load/http_link.h"
#include "client/load/load_loop.h"
#include "transports/epoll/wakeable_epoll.h"

namespace manifold::load {
namespace {

constexpr absl::Duration kPollInterval = absl::Milliseconds(2);
constexpr int64_t kProgressIntervalNs = 1'000'000'000;
// An event loop wakes at least this often to look at the stop flags.
constexpr int kLoopWaitMs = 20;
constexpr int kMaxEvents = 256;

absl::Duration CpuTime() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return absl::DurationFromTimeval(usage.ru_utime) +
         absl::DurationFromTimeval(usage.ru_stime);
}

// JSON string literal for text the tool made up (channels, client ids the
// server gave): only quotes and backslashes need escaping.
std::string Quoted(absl::string_view text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  out.push_back('"');
  return out;
}

// One Bayeux client's identity on the server.
struct Session {
  std::string client_id;
  std::string cookie;
  uint64_t next_id = 0;

  std::string Id() { return absl::StrCat("\"", ++next_id, "\""); }
};

// What a run shares between its threads.
struct Progress {
  std::atomic<uint64_t> min_received{0};  // the slowest subscriber's count
  std::atomic<uint64_t> total_received{0};
  std::atomic<int64_t> last_arrival_ns{0};
  std::atomic<uint64_t> sent{0};
  std::atomic<bool> publishing_done{false};
  // The publisher waits for the window: wake it when min_received grows.
  std::atomic<bool> publisher_waiting{false};
};

class BayeuxRun {
 public:
  BayeuxRun(const LoadOptions& options, const Endpoint& endpoint)
      : o_(options),
        endpoint_(endpoint),
        channel_(absl::StrCat("/bench/r", getpid(), "x",
                              NowNanos() / 1000 % 1000000)),
        replies_(channel_),
        path_(options.bayeux_path) {}

  absl::StatusOr<LoadReport> Go() {
    if (absl::Status s = Setup(); !s.ok()) return s;
    absl::Status measured = Measure();
    Disconnect();
    if (!measured.ok()) return measured;
    return Report();
  }

 private:
  struct Subscriber {
    std::unique_ptr<HttpLink> link;
    Session session;
    std::array<uint64_t, kBayeuxLanes> next{};
    uint64_t received = 0;
    bool done = false;
  };

  struct Lane {
    std::unique_ptr<HttpLink> link;
    uint64_t total = 0;   // messages this lane is to send
    uint64_t seq = 0;     // the next sequence number
    uint64_t posted = 0;  // messages in the POST in flight
    bool failed = false;
    std::string body;
  };

  // --- Setup ---------------------------------------------------------------

  absl::Status Call(HttpLink& link, Session& session, absl::string_view path,
                    const std::string& body,
                    std::vector<BayeuxMessage>& messages) {
    if (absl::Status s =
            link.Post(absl::StrCat(path_, path), session.cookie, body);
        !s.ok()) {
      return s;
    }
    if (absl::Status s = link.Exchange(absl::Now() + o_.timeout); !s.ok()) {
      return s;
    }
    const HttpResponseReader& response = link.response();
    if (session.cookie.empty()) session.cookie = response.set_cookie();
    if (response.status() != 200) {
      return absl::FailedPreconditionError(absl::StrCat(
          link.name(), ": ", path_, path, ": HTTP ", response.status(), ": ",
          absl::string_view(response.body()).substr(0, 200)));
    }
    absl::Status parsed = replies_.Parse(response.body(), messages);
    if (!parsed.ok()) {
      return absl::Status(parsed.code(),
                          absl::StrCat(link.name(), ": ", parsed.message()));
    }
    return absl::OkStatus();
  }

  // Expects a successful answer on `channel` among `messages`.
  static absl::Status Expect(const HttpLink& link, BayeuxChannel channel,
                             absl::string_view what,
                             const std::vector<BayeuxMessage>& messages,
                             const std::string& body) {
    for (const BayeuxMessage& m : messages) {
      if (m.channel != channel) continue;
      if (m.successful) return absl::OkStatus();
      break;
    }
    return absl::FailedPreconditionError(
        absl::StrCat(link.name(), ": the server refused the ", what, ": ",
                     absl::string_view(body).substr(0, 200)));
  }

  absl::Status Handshake(HttpLink& link, Session& session) {
    session.client_id.clear();
    std::vector<BayeuxMessage> messages;
    if (absl::Status s =
            Call(link, session, "/handshake",
                 absl::StrCat(
                     "[{\"channel\":\"/meta/handshake\",\"version\":\"1.0\","
                     "\"minimumVersion\":\"1.0\","
                     "\"supportedConnectionTypes\":[\"long-polling\"],"
                     "\"id\":",
                     session.Id(), "}]"),
                 messages);
        !s.ok()) {
      return s;
    }
    absl::Status ok = Expect(link, BayeuxChannel::kHandshake, "handshake",
                             messages, link.response().body());
    if (!ok.ok()) return ok;
    for (const BayeuxMessage& m : messages) {
      if (m.channel == BayeuxChannel::kHandshake)
        session.client_id = m.client_id;
    }
    if (session.client_id.empty()) {
      return absl::FailedPreconditionError(absl::StrCat(
          link.name(), ": the handshake's answer has no clientId"));
    }
    return absl::OkStatus();
  }

  absl::Status Subscribe(HttpLink& link, Session& session) {
    std::vector<BayeuxMessage> messages;
    if (absl::Status s =
            Call(link, session, "/",
                 absl::StrCat("[{\"channel\":\"/meta/subscribe\",\"clientId\":",
                              Quoted(session.client_id), ",\"subscription\":",
                              Quoted(channel_), ",\"id\":", session.Id(), "}]"),
                 messages);
        !s.ok()) {
      return s;
    }
    return Expect(link, BayeuxChannel::kSubscribe, "subscription", messages,
                  link.response().body());
  }

  absl::Status Setup() {
    for (int s = 0; s < o_.subscribers; ++s) {
      auto sub = std::make_unique<Subscriber>();
      absl::StatusOr<std::unique_ptr<HttpLink>> link =
          HttpLink::Open(endpoint_, absl::StrCat("bench-sub-", s), o_.timeout);
      if (!link.ok()) return link.status();
      sub->link = *std::move(link);
      if (absl::Status st = Handshake(*sub->link, sub->session); !st.ok()) {
        return st;
      }
      if (absl::Status st = Subscribe(*sub->link, sub->session); !st.ok()) {
        return st;
      }
      subscribers_.push_back(std::move(sub));
    }
    absl::StatusOr<std::unique_ptr<HttpLink>> control =
        HttpLink::Open(endpoint_, "bench-pub-0", o_.timeout);
    if (!control.ok()) return control.status();
    control_ = *std::move(control);
    if (absl::Status s = Handshake(*control_, publisher_); !s.ok()) return s;
    for (int l = 0; l < kBayeuxLanes; ++l) {
      Lane& lane = lanes_[l];
      absl::StatusOr<std::unique_ptr<HttpLink>> link = HttpLink::Open(
          endpoint_, absl::StrCat("bench-pub-0-lane-", l), o_.timeout);
      if (!link.ok()) return link.status();
      lane.link = *std::move(link);
      lane.total =
          o_.messages / kBayeuxLanes +
          (static_cast<uint64_t>(l) < o_.messages % kBayeuxLanes ? 1 : 0);
    }
    // The fixed parts of every publish message.
    publish_head_ = absl::StrCat("{\"channel\":", Quoted(channel_),
                                 ",\"clientId\":", Quoted(publisher_.client_id),
                                 ",\"data\":{\"l\":");
    publish_pad_ = absl::StrCat(",\"p\":\"", std::string(o_.payload_bytes, 'x'),
                                "\"},\"id\":\"");
    return absl::OkStatus();
  }

  std::string ConnectBody(Session& session) {
    return absl::StrCat(
        "[{\"channel\":\"/meta/connect\",\"clientId\":",
        Quoted(session.client_id),
        ",\"connectionType\":\"long-polling\",\"id\":", session.Id(), "}]");
  }

  // Posts `body` on `link` and makes sure `epoll` watches its descriptor
  // (a new one when the server ended the last connection).
  static absl::Status Send(WakeableEpoll& epoll, HttpLink& link, int& watched,
                           uint64_t token, absl::string_view path,
                           absl::string_view cookie, absl::string_view body) {
    if (absl::Status s = link.Post(path, cookie, body); !s.ok()) return s;
    if (link.fd() != watched) {
      if (absl::Status s = epoll.Add(
              link.fd(), EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, token);
          !s.ok()) {
        return s;
      }
      watched = link.fd();
    }
    return link.Flush();
  }

  // --- Subscribers -----------------------------------------------------------

  void Take(Subscriber& sub, const BayeuxMessage& m) {
    if (!m.has_stamp || m.lane >= kBayeuxLanes) {
      ++corrupt_;
      return;
    }
    uint64_t& want = sub.next[m.lane];
    if (m.seq == want) {
      ++want;
      ++sub.received;
    } else if (m.seq < want) {
      ++duplicates_;
    } else {
      ++reordered_;  // a gap: lost or out of order, settled at the end
      want = m.seq + 1;
      ++sub.received;
    }
  }

  // Takes the deliveries of a poll's answer and follows its advice; sets
  // `rehandshake` when the server asks for a new handshake. Returns an error
  // when the run cannot go on.
  absl::Status OnPollAnswer(Subscriber& sub, std::vector<BayeuxMessage>& buf,
                            bool& rehandshake) {
    const HttpResponseReader& response = sub.link->response();
    if (response.status() != 200) {
      return absl::FailedPreconditionError(absl::StrCat(
          sub.link->name(), ": /meta/connect: HTTP ", response.status(), ": ",
          absl::string_view(response.body()).substr(0, 200)));
    }
    absl::Status parsed = replies_.Parse(response.body(), buf);
    if (!parsed.ok()) {
      return absl::Status(parsed.code(), absl::StrCat(sub.link->name(), ": ",
                                                      parsed.message()));
    }
    for (const BayeuxMessage& m : buf) {
      if (m.channel == BayeuxChannel::kData) {
        if (m.has_data) Take(sub, m);
      } else if (m.channel == BayeuxChannel::kConnect) {
        if (m.reconnect == "none") {
          return absl::FailedPreconditionError(absl::StrCat(
              sub.link->name(), ": the server ended the session: ",
              m.error.empty() ? "advice reconnect none" : m.error));
        }
        // "retry" or no advice: poll again.
        if (m.reconnect == "handshake") rehandshake = true;
      }
    }
    return absl::OkStatus();
  }

  absl::Status RunSubscribers(WakeableEpoll& epoll, WakeableEpoll& publisher) {
    std::vector<int> watched(subscribers_.size(), -1);
    for (size_t i = 0; i < subscribers_.size(); ++i) {
      Subscriber& sub = *subscribers_[i];
      if (absl::Status s = Send(epoll, *sub.link, watched[i], i,
                                absl::StrCat(path_, "/connect"),
                                sub.session.cookie, ConnectBody(sub.session));
          !s.ok()) {
        return s;
      }
    }
    const std::string connect_path = absl::StrCat(path_, "/connect");
    std::vector<BayeuxMessage> buf;
    std::vector<epoll_event> events(kMaxEvents);
    size_t active = subscribers_.size();
    uint64_t reported_min = 0;
    while (!stop_.load(std::memory_order_relaxed) && active > 0) {
      absl::StatusOr<int> n = epoll.Wait(absl::MakeSpan(events), kLoopWaitMs);
      if (!n.ok()) return n.status();
      bool arrived = false;
      for (int e = 0; e < *n; ++e) {
        Subscriber& sub = *subscribers_[events[e].data.u64];
        const size_t index = events[e].data.u64;
        if (sub.done) continue;
        if ((events[e].events & EPOLLOUT) && sub.link->pending_output()) {
          if (absl::Status s = sub.link->Flush(); !s.ok()) return s;
        }
        if (!sub.link->busy()) continue;
        absl::StatusOr<bool> whole = sub.link->Read();
        if (!whole.ok()) return whole.status();
        if (!*whole) continue;
        const uint64_t before = sub.received;
        bool rehandshake = false;
        if (absl::Status s = OnPollAnswer(sub, buf, rehandshake); !s.ok()) {
          return s;
        }
        if (sub.received != before) {
          arrived = true;
          total_received_.fetch_add(sub.received - before,
                                    std::memory_order_relaxed);
        }
        if (sub.received >= o_.messages) {
          sub.done = true;
          --active;
          continue;
        }
        if (rehandshake) {
          if (absl::Status s = Handshake(*sub.link, sub.session); !s.ok()) {
            return s;
          }
          if (absl::Status s = Subscribe(*sub.link, sub.session); !s.ok()) {
            return s;
          }
        }
        if (absl::Status s =
                Send(epoll, *sub.link, watched[index], index, connect_path,
                     sub.session.cookie, ConnectBody(sub.session));
            !s.ok()) {
          return s;
        }
      }
      if (arrived) {
        progress_.last_arrival_ns.store(NowNanos(), std::memory_order_relaxed);
        progress_.total_received.store(
            total_received_.load(std::memory_order_relaxed));
        uint64_t min = ~uint64_t{0};
        for (const auto& sub : subscribers_) min = std::min(min, sub->received);
        if (min != reported_min) {
          reported_min = min;
          progress_.min_received.store(min);
          if (progress_.publisher_waiting.exchange(false)) publisher.Wake();
        }
      }
    }
    return absl::OkStatus();
  }

  // --- Publisher -------------------------------------------------------------

  // Posts the lane's next batch if the window has room.
  absl::Status Pump(WakeableEpoll& epoll, Lane& lane, int& watched,
                    uint64_t token) {
    if (lane.link->busy() || lane.failed || lane.seq >= lane.total ||
        stop_sending_.load(std::memory_order_relaxed)) {
      return absl::OkStatus();
    }
    uint64_t sent = progress_.sent.load(std::memory_order_relaxed);
    uint64_t ahead = sent - std::min(sent, progress_.min_received.load());
    if (ahead >= o_.window) {
      // Ask to be woken, then look again: the subscribers may have moved on
      // in between.
      progress_.publisher_waiting.store(true);
      ahead = sent - std::min(sent, progress_.min_received.load());
      if (ahead >= o_.window) return absl::OkStatus();
    }
    const uint64_t n = std::min<uint64_t>(
        {kBayeuxBatch, lane.total - lane.seq, o_.window - ahead});
    std::string& body = lane.body;
    body.clear();
    body.push_back('[');
    for (uint64_t k = 0; k < n; ++k) {
      if (k > 0) body.push_back(',');
      absl::StrAppend(&body, publish_head_, token, ",\"s\":", lane.seq + k,
                      publish_pad_, ++publish_ids_, "\"}");
    }
    body.push_back(']');
    lane.seq += n;
    lane.posted = n;
    if (first_send_ns_ == 0) first_send_ns_ = NowNanos();
    progress_.sent.fetch_add(n, std::memory_order_relaxed);
    return Send(epoll, *lane.link, watched, token, publish_path_,
                publisher_.cookie, body);
  }

  // The publish answers in `body` written as compact JSON that say
  // "successful":true, or 0 if any says false. Manifold and Faye write
  // compact JSON; an answer this does not account for fully is parsed.
  static uint64_t CountSuccessful(absl::string_view body) {
    static constexpr absl::string_view kTrue = "\"successful\":true";
    static constexpr absl::string_view kFalse = "\"successful\":false";
    if (body.find(kFalse) != absl::string_view::npos) return 0;
    uint64_t n = 0;
    for (size_t at = body.find(kTrue); at != absl::string_view::npos;
         at = body.find(kTrue, at + kTrue.size())) {
      ++n;
    }
    return n;
  }

  // Checks a publish POST's answer: every message successful.
  void OnPublishAnswer(Lane& lane, std::vector<BayeuxMessage>& buf) {
    const HttpResponseReader& response = lane.link->response();
    if (response.status() == 200 &&
        CountSuccessful(response.body()) == lane.posted) {
      lane.posted = 0;
      return;
    }
    uint64_t ok = 0;
    if (response.status() == 200 && replies_.Parse(response.body(), buf).ok()) {
      for (const BayeuxMessage& m : buf) {
        if (m.channel == BayeuxChannel::kData && m.successful) ++ok;
      }
    }
    if (ok != lane.posted) {
      lane.failed = true;
      errors_.Add(
          lane.link->name(),
          absl::StrCat("publish: HTTP ", response.status(), ", ", ok, " of ",
                       lane.posted, " successful: ",
                       absl::string_view(response.body()).substr(0, 200)));
    }
    lane.posted = 0;
  }

  absl::Status RunPublisher(WakeableEpoll& epoll) {
    constexpr uint64_t kControl = kBayeuxLanes;
    std::array<int, kBayeuxLanes + 1> watched;
    watched.fill(-1);
    const std::string connect_path = absl::StrCat(path_, "/connect");
    if (absl::Status s =
            Send(epoll, *control_, watched[kControl], kControl, connect_path,
                 publisher_.cookie, ConnectBody(publisher_));
        !s.ok()) {
      return s;
    }
    for (int l = 0; l < kBayeuxLanes; ++l) {
      if (absl::Status s = Pump(epoll, lanes_[l], watched[l], l); !s.ok()) {
        return s;
      }
    }
    std::vector<BayeuxMessage> buf;
    std::vector<epoll_event> events(kMaxEvents);
    while (!stop_.load(std::memory_order_relaxed)) {
      absl::StatusOr<int> n = epoll.Wait(absl::MakeSpan(events), kLoopWaitMs);
      if (!n.ok()) return n.status();
      for (int e = 0; e < *n; ++e) {
        const uint64_t token = events[e].data.u64;
        HttpLink& link = token == kControl ? *control_ : *lanes_[token].link;
        if ((events[e].events & EPOLLOUT) && link.pending_output()) {
          if (absl::Status s = link.Flush(); !s.ok()) return s;
        }
        if (!link.busy()) continue;
        absl::StatusOr<bool> whole = link.Read();
        if (!whole.ok()) {
          // The held poll may be cut once publishing is over.
          if (token == kControl && progress_.publishing_done.load()) continue;
          return whole.status();
        }
        if (!*whole) continue;
        if (token == kControl) {
          if (progress_.publishing_done.load()) continue;
          if (absl::Status s = Send(epoll, *control_, watched[kControl],
                                    kControl, connect_path, publisher_.cookie,
                                    ConnectBody(publisher_));
              !s.ok()) {
            return s;
          }
        } else {
          OnPublishAnswer(lanes_[token], buf);
        }
      }
      // Every lane with room sends: after an answer, or when the window
      // opened.
      bool all_done = true;
      for (int l = 0; l < kBayeuxLanes; ++l) {
        if (absl::Status s = Pump(epoll, lanes_[l], watched[l], l); !s.ok()) {
          return s;
        }
        const Lane& lane = lanes_[l];
        if (lane.link->busy() ||
            (!lane.failed && lane.seq < lane.total &&
             !stop_sending_.load(std::memory_order_relaxed))) {
          all_done = false;
        }
      }
      if (all_done && !progress_.publishing_done.load()) {
        progress_.publishing_done.store(true);
      }
    }
    return absl::OkStatus();
  }

  // --- The run ---------------------------------------------------------------

  absl::Status Measure() {
    absl::StatusOr<WakeableEpoll> sub_epoll = WakeableEpoll::Create();
    if (!sub_epoll.ok()) return sub_epoll.status();
    absl::StatusOr<WakeableEpoll> pub_epoll = WakeableEpoll::Create();
    if (!pub_epoll.ok()) return pub_epoll.status();
    publish_path_ = absl::StrCat(path_, "/");

    const absl::Duration cpu_before = CpuTime();
    const int64_t start_ns = NowNanos();
    absl::Status sub_result;
    absl::Status pub_result;
    std::atomic<bool> failed{false};
    std::thread subs([&] {
      sub_result = RunSubscribers(*sub_epoll, *pub_epoll);
      if (!sub_result.ok()) failed.store(true);
    });
    std::thread pub([&] {
      pub_result = RunPublisher(*pub_epoll);
      if (!pub_result.ok()) failed.store(true);
    });

    const int64_t duration_ns = absl::ToInt64Nanoseconds(o_.duration);
    const int64_t timeout_ns = absl::ToInt64Nanoseconds(o_.timeout);
    int64_t last_change_ns = start_ns;
    uint64_t last_received = 0;
    uint64_t last_sent = 0;
    int64_t next_progress_ns = start_ns + kProgressIntervalNs;
    const uint64_t subscribers = static_cast<uint64_t>(o_.subscribers);
    while (!failed.load()) {
      absl::SleepFor(kPollInterval);
      const int64_t now = NowNanos();
      if (!stop_sending_.load() && now - start_ns >= duration_ns) {
        stop_sending_.store(true);
        pub_epoll->Wake();
      }
      const uint64_t received = progress_.total_received.load();
      const uint64_t sent = progress_.sent.load();
      if (progress_.publishing_done.load() && received >= sent * subscribers) {
        break;
      }
      if (received != last_received || sent != last_sent) {
        last_received = received;
        last_sent = sent;
        last_change_ns = now;
      } else if (now - last_change_ns >= timeout_ns) {
        timed_out_ = true;
        break;
      }
      if (o_.on_progress && now >= next_progress_ns) {
        next_progress_ns += kProgressIntervalNs;
        o_.on_progress(
            LoadProgress{absl::Nanoseconds(now - start_ns), sent, received});
      }
    }
    stop_sending_.store(true);
    stop_.store(true);
    sub_epoll->Wake();
    pub_epoll->Wake();
    subs.join();
    pub.join();
    client_cpu_ = CpuTime() - cpu_before;
    if (!sub_result.ok()) return sub_result;
    return pub_result;
  }

  // Says goodbye on every connection that has no request in flight, without
  // waiting for the answers: the run's result does not depend on them.
  void Disconnect() {
    auto goodbye = [this](HttpLink* link, Session& session) {
      if (link == nullptr || link->busy() || session.client_id.empty()) return;
      if (!link->Post(absl::StrCat(path_, "/"), session.cookie,
                      absl::StrCat("[{\"channel\":\"/meta/disconnect\","
                                   "\"clientId\":",
                                   Quoted(session.client_id),
                                   ",\"id\":", session.Id(), "}]"))
               .ok()) {
        return;
      }
      (void)link->Flush();
    };
    for (auto& sub : subscribers_) goodbye(sub->link.get(), sub->session);
    for (Lane& lane : lanes_) {
      if (lane.link != nullptr && !lane.link->busy()) {
        goodbye(lane.link.get(), publisher_);
        break;
      }
    }
  }

  LoadReport Report() {
    LoadReport r;
    r.options = o_;
    r.options.on_progress = nullptr;
    r.timed_out = timed_out_;
    r.client_cpu = client_cpu_;
    r.errors = errors_.count();
    r.first_error = errors_.first();
    std::array<uint64_t, kBayeuxLanes> sent_per_lane;
    for (int l = 0; l < kBayeuxLanes; ++l) {
      sent_per_lane[l] = lanes_[l].seq;
      r.sent += lanes_[l].seq;
    }
    r.expected = r.sent * static_cast<uint64_t>(o_.subscribers);
    for (const auto& sub : subscribers_) {
      r.received += sub->received;
      for (int l = 0; l < kBayeuxLanes; ++l) {
        if (sub->next[l] < sent_per_lane[l]) {
          r.lost += sent_per_lane[l] - sub->next[l];
        }
      }
    }
    // A gap that was filled later shows as reordered, never as lost.
    if (r.expected > r.received + r.lost) {
      r.lost = r.expected - r.received;
    }
    r.received_bytes = r.received * o_.payload_bytes;
    r.duplicates = duplicates_;
    r.reordered = reordered_;
    r.corrupt = corrupt_;
    const int64_t last_ns = progress_.last_arrival_ns.load();
    if (first_send_ns_ != 0 && last_ns > first_send_ns_) {
      r.elapsed = absl::Nanoseconds(last_ns - first_send_ns_);
      const double seconds = absl::ToDoubleSeconds(r.elapsed);
      r.sent_per_second = static_cast<double>(r.sent) / seconds;
      r.received_per_second = static_cast<double>(r.received) / seconds;
    }
    return r;
  }

  const LoadOptions& o_;
  const Endpoint endpoint_;
  const std::string channel_;
  const BayeuxReplyParser replies_;
  const std::string path_;

  std::vector<std::unique_ptr<Subscriber>> subscribers_;
  Session publisher_;
  std::unique_ptr<HttpLink> control_;
  std::array<Lane, kBayeuxLanes> lanes_;
  std::string publish_head_;
  std::string publish_pad_;
  std::string publish_path_;
  uint64_t publish_ids_ = 0;

  Progress progress_;
  ErrorLog errors_;
  std::atomic<bool> stop_sending_{false};
  std::atomic<bool> stop_{false};
  // Subscriber thread only, read after it ends.
  std::atomic<uint64_t> total_received_{0};
  uint64_t duplicates_ = 0;
  uint64_t reordered_ = 0;
  uint64_t corrupt_ = 0;
  // Publisher thread only, read after it ends.
  int64_t first_send_ns_ = 0;

  bool timed_out_ = false;
  absl::Duration client_cpu_;
};

}  // namespace

absl::StatusOr<LoadReport> RunBayeuxLoad(const LoadOptions& options,
                                         const Endpoint& endpoint) {
  BayeuxRun run(options, endpoint);
  return run.Go();
}

}  // namespace manifold::load

#else  // !MANIFOLD_HAVE_BAYEUX_LOAD

namespace manifold::load {

absl::StatusOr<LoadReport> RunBayeuxLoad(const LoadOptions&, const Endpoint&) {
  return absl::FailedPreconditionError(
      "this build of the load tool has no Bayeux client (it needs "
      "libhttp-parser-dev and rapidjson-dev)");
}

}  // namespace manifold::load

#endif  // MANIFOLD_HAVE_BAYEUX_LOAD
