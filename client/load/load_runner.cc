#include "client/load/load_runner.h"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "client/load/bayeux_load.h"
#include "client/load/durable_roles.h"
#include "client/load/link.h"
#include "client/load/load_loop.h"
#include "client/load/loopback.h"
#include "client/load/roles.h"
#include "client/load/tls_link.h"
#include "core/framing.h"
#include "core/manifold.pb.h"
#include "core/topic.h"

namespace manifold::load {
namespace {

constexpr absl::Duration kPollInterval = absl::Milliseconds(2);
constexpr int64_t kProgressIntervalNs = 1'000'000'000;

absl::Duration CpuTime() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return absl::DurationFromTimeval(usage.ru_utime) +
         absl::DurationFromTimeval(usage.ru_stime);
}

// Subjects of one run carry a tag, so two runs against one server do not
// see each other's messages.
struct Subjects {
  explicit Subjects(std::string tag) : tag(std::move(tag)) {}
  std::string Data() const { return absl::StrCat("bench.", tag, ".data"); }
  std::string Wildcard(int k) const {
    return absl::StrCat("bench.", tag, ".w.", k, ".data");
  }
  std::string WildcardPattern(int subscriber) const {
    switch (subscriber % 4) {
      case 0:
        return absl::StrCat("bench.", tag, ".w.*.data");
      case 1:
        return absl::StrCat("bench.", tag, ".w.>");
      case 2:
        return absl::StrCat("bench.", tag, ".*.*.data");
      default:
        return absl::StrCat("bench.", tag, ".>");
    }
  }
  std::string Service() const { return absl::StrCat("bench.", tag, ".svc"); }
  // Every subject of every run: what a replay reads.
  static std::string All() { return "bench.>"; }
  std::string Inbox(int requester) const {
    return absl::StrCat("_INBOX.bench", tag, ".", requester);
  }

  std::string tag;
};

class LoadRun {
 public:
  // Publishers connect to `endpoint`; subscriber s to
  // subscriber_endpoints[s % size()], or to `endpoint` when there are none.
  LoadRun(LoadOptions options, Endpoint endpoint,
          std::vector<Endpoint> subscriber_endpoints)
      : o_(std::move(options)),
        endpoint_(std::move(endpoint)),
        subscriber_endpoints_(std::move(subscriber_endpoints)),
        wire_(LoadWire::For(o_.protocol)),
        subjects_(absl::StrCat("r", getpid())) {}

  absl::StatusOr<LoadReport> Go() {
    if (o_.tls.enabled) {
      // One context for every link: the files are read once.
      absl::StatusOr<std::shared_ptr<const TlsClientContext>> context =
          LoadTlsContext(o_.tls, endpoint_.host);
      if (!context.ok()) return context.status();
      tls_ = *std::move(context);
    }
    if (absl::Status s = Setup(); !s.ok()) return s;
    // The subscriptions are in place on their servers; let a cluster carry
    // them to the publishers' server.
    if (o_.settle > absl::ZeroDuration()) absl::SleepFor(o_.settle);
    if (absl::Status s = Measure(); !s.ok()) return s;
    return Report();
  }

 private:
  absl::StatusOr<std::unique_ptr<Link>> Connect(
      const Endpoint& endpoint, const std::string& name,
      const std::function<void(Link&)>& prepare) {
    absl::StatusOr<std::unique_ptr<Link>> link =
        Link::Open(endpoint, *wire_, name, o_.timeout, o_.websocket_path,
                   o_.websocket_protocol, tls_);
    if (!link.ok()) {
      return absl::Status(link.status().code(),
                          absl::StrCat(name, ": ", link.status().message()));
    }
    wire_->AppendConnect(name, (*link)->output());
    if (prepare) prepare(**link);
    absl::Status ready =
        (*link)->Sync(absl::Now() + o_.timeout, [&](const ServerEvent& event) {
          if (event.kind == ServerEvent::Kind::kError) {
            return absl::FailedPreconditionError(absl::StrCat(
                name, ": the server refused the setup: ", event.text));
          }
          return absl::OkStatus();
        });
    if (!ready.ok()) return ready;
    return link;
  }

  // Asks the broker for its streams ($sys/streams/list) and returns OK when
  // one captures the run's subject, FAILED_PRECONDITION otherwise.
  absl::Status CheckStreamCaptures() {
    const std::string topic = wire_->Subject(subjects_.Data());
    bool answered = false;
    bool captured = false;
    absl::StatusOr<std::unique_ptr<Link>> link =
        Link::Open(endpoint_, *wire_, "bench-streams", o_.timeout,
                   o_.websocket_path, o_.websocket_protocol, tls_);
    if (!link.ok()) return link.status();
    wire_->AppendConnect("bench-streams", (*link)->output());
    wire::ClientMessage m;
    m.mutable_request()->set_op_id(1);
    m.mutable_request()->set_topic("$sys/streams/list");
    AppendFrame(m, &(*link)->output());
    absl::Status synced =
        (*link)->Sync(absl::Now() + o_.timeout, [&](const ServerEvent& event) {
          if (event.kind == ServerEvent::Kind::kError) {
            return absl::FailedPreconditionError(
                absl::StrCat("listing the server's streams: ", event.text));
          }
          if (event.kind != ServerEvent::Kind::kResponse || event.id != 1) {
            return absl::OkStatus();
          }
          answered = true;
          wire::StreamList list;
          if (!event.ok ||
              !list.ParseFromArray(event.payload.data(),
                                   static_cast<int>(event.payload.size()))) {
            return absl::FailedPreconditionError(absl::StrCat(
                "the server did not list its streams: ", event.text));
          }
          for (const wire::StreamInfo& info : list.streams()) {
            for (const std::string& pattern : info.config().topics()) {
              if (Matches(pattern, topic)) captured = true;
            }
          }
          return absl::OkStatus();
        });
    if (!synced.ok()) return synced;
    if (!answered) {
      return absl::FailedPreconditionError(
          "the server did not answer $sys/streams/list");
    }
    if (!captured) {
      return absl::FailedPreconditionError(absl::StrCat(
          "no stream of the server captures ", topic,
          ": durable runs need one on bench/** (manifoldd --config with "
          "streams { name: \"BENCH\" topics: \"bench/**\" })"));
    }
    return absl::OkStatus();
  }

  absl::Status Setup() {
    const Scenario scenario = o_.scenario;
    // Receivers first: every subscription is in place before anything is
    // published.
    for (int s = 0; s < o_.subscribers; ++s) {
      const std::string name = absl::StrCat("bench-sub-", s);
      const Endpoint& endpoint =
          subscriber_endpoints_.empty()
              ? endpoint_
              : subscriber_endpoints_[static_cast<size_t>(s) %
                                      subscriber_endpoints_.size()];
      absl::StatusOr<std::unique_ptr<Link>> link =
          Connect(endpoint, name, [&](Link& l) {
            std::string& out = l.output();
            switch (scenario) {
              case Scenario::kPubSub:
              case Scenario::kFanOut:
                wire_->AppendSubscribe(subjects_.Data(), "", 1, out);
                break;
              case Scenario::kQueue:
                wire_->AppendSubscribe(subjects_.Data(), "bench-workers", 1,
                                       out);
                break;
              case Scenario::kWildcard:
                wire_->AppendSubscribe(subjects_.WildcardPattern(s), "", 1,
                                       out);
                break;
              case Scenario::kRequestReply:
                if (!wire_->AppendServe(subjects_.Service(), 1, out)) {
                  wire_->AppendSubscribe(
                      subjects_.Service(),
                      o_.subscribers > 1 ? "bench-responders" : "", 1, out);
                }
                break;
              case Scenario::kPing:
              case Scenario::kDurable:
              case Scenario::kReplay:
                break;
            }
          });
      if (!link.ok()) return link.status();
      receivers_.push_back(*std::move(link));
    }
    if (scenario == Scenario::kDurable && o_.protocol == Protocol::kNative) {
      // A native Ack does not say whether the message was stored: make sure
      // a stream captures the subject first, so every ack counted is durable.
      // (A NATS publish to no stream gets no answer at all: lost.)
      if (absl::Status s = CheckStreamCaptures(); !s.ok()) return s;
    }
    for (int p = 0; p < o_.publishers; ++p) {
      const std::string name = absl::StrCat("bench-pub-", p);
      absl::StatusOr<std::unique_ptr<Link>> link =
          Connect(endpoint_, name, [&](Link& l) {
            if ((scenario == Scenario::kRequestReply ||
                 scenario == Scenario::kDurable) &&
                o_.protocol == Protocol::kNats) {
              wire_->AppendSubscribe(absl::StrCat(subjects_.Inbox(p), ".*"), "",
                                     1, l.output());
            }
          });
      if (!link.ok()) return link.status();
      senders_.push_back(*std::move(link));
    }
    return absl::OkStatus();
  }

  absl::Status BuildRoles(LoadLoop& send_loop, LoadLoop& receive_loop) {
    const uint32_t publishers = static_cast<uint32_t>(o_.publishers);
    switch (o_.scenario) {
      case Scenario::kPubSub:
      case Scenario::kFanOut:
      case Scenario::kQueue:
      case Scenario::kWildcard: {
        std::vector<SendStream*> streams;
        for (uint32_t p = 0; p < publishers; ++p) {
          streams_.push_back(std::make_unique<SendStream>());
          streams_.back()->loop = &send_loop;
          streams.push_back(streams_.back().get());
        }
        tally_ = std::make_unique<ReceiveTally>(
            o_.scenario == Scenario::kQueue ? ReceiveTally::Kind::kQueueGroup
                                            : ReceiveTally::Kind::kBroadcast,
            o_.subscribers, std::move(streams), o_.messages);
        for (uint32_t p = 0; p < publishers; ++p) {
          std::vector<MessageTemplate> templates;
          if (o_.scenario == Scenario::kWildcard) {
            for (int k = 0; k < o_.subjects; ++k) {
              templates.push_back(wire_->PublishTemplate(subjects_.Wildcard(k),
                                                         "", o_.payload_bytes));
            }
          } else {
            templates.push_back(
                wire_->PublishTemplate(subjects_.Data(), "", o_.payload_bytes));
          }
          publishers_.push_back(std::make_unique<Publisher>(
              p, std::move(templates), o_.messages, o_.window, *streams_[p],
              stop_sending_));
          send_loop.Add(*senders_[p], *publishers_.back());
        }
        for (int s = 0; s < o_.subscribers; ++s) {
          subscribers_.push_back(std::make_unique<Subscriber>(
              *tally_, s, o_.read_bytes_per_second));
          receive_loop.Add(*receivers_[s], *subscribers_.back());
        }
        receive_loop.AddTurnHook([this] { tally_->Publish(); });
        return absl::OkStatus();
      }
      case Scenario::kRequestReply:
        for (uint32_t p = 0; p < publishers; ++p) {
          trips_.push_back(std::make_unique<RoundTrips>());
          requesters_.push_back(std::make_unique<Requester>(
              p, subjects_.Service(), subjects_.Inbox(static_cast<int>(p)),
              o_.payload_bytes, o_.inflight, o_.messages, *trips_.back(),
              stop_sending_));
          send_loop.Add(*senders_[p], *requesters_.back());
        }
        for (int s = 0; s < o_.subscribers; ++s) {
          responders_.push_back(std::make_unique<Responder>());
          receive_loop.Add(*receivers_[s], *responders_.back());
        }
        return absl::OkStatus();
      case Scenario::kPing:
        for (uint32_t p = 0; p < publishers; ++p) {
          trips_.push_back(std::make_unique<RoundTrips>());
          pingers_.push_back(std::make_unique<Pinger>(
              o_.messages, *trips_.back(), stop_sending_));
          send_loop.Add(*senders_[p], *pingers_.back());
        }
        return absl::OkStatus();
      case Scenario::kDurable:
        for (uint32_t p = 0; p < publishers; ++p) {
          trips_.push_back(std::make_unique<RoundTrips>());
          durable_publishers_.push_back(std::make_unique<DurablePublisher>(
              p, subjects_.Data(), subjects_.Inbox(static_cast<int>(p)),
              o_.payload_bytes, o_.window, o_.messages, *trips_.back(),
              stop_sending_));
          send_loop.Add(*senders_[p], *durable_publishers_.back());
        }
        return absl::OkStatus();
      case Scenario::kReplay:
        trips_.push_back(std::make_unique<RoundTrips>());
        replay_readers_.push_back(std::make_unique<ReplayReader>(
            Subjects::All(), o_.replay_stream, o_.replay_from, o_.messages,
            *trips_.back()));
        send_loop.Add(*senders_[0], *replay_readers_.back());
        return absl::OkStatus();
    }
    return absl::InternalError("unknown scenario");
  }

  uint64_t SentSoFar() const {
    uint64_t sent = 0;
    for (const auto& s : streams_) sent += s->sent.load();
    for (const auto& t : trips_) sent += t->sent.load();
    return sent;
  }

  uint64_t ReceivedSoFar() const {
    if (tally_ != nullptr) return tally_->received_total();
    uint64_t answered = 0;
    for (const auto& t : trips_) answered += t->answered.load();
    return answered;
  }

  bool Finished() const {
    if (tally_ != nullptr) {
      uint64_t expected = 0;
      for (const auto& s : streams_) {
        if (!s->done.load()) return false;
        expected +=
            s->sent.load() * (o_.scenario == Scenario::kQueue
                                  ? 1
                                  : static_cast<uint64_t>(o_.subscribers));
      }
      return tally_->received_total() >= expected;
    }
    for (const auto& t : trips_) {
      if (!t->done.load()) return false;
    }
    return true;
  }

  absl::Status Measure() {
    absl::StatusOr<std::unique_ptr<LoadLoop>> send_loop =
        LoadLoop::Create(errors_);
    if (!send_loop.ok()) return send_loop.status();
    std::unique_ptr<LoadLoop> receive_loop_owned;
    LoadLoop* receive_loop = send_loop->get();
    if (o_.client_threads == 2 && o_.subscribers > 0) {
      absl::StatusOr<std::unique_ptr<LoadLoop>> created =
          LoadLoop::Create(errors_);
      if (!created.ok()) return created.status();
      receive_loop_owned = *std::move(created);
      receive_loop = receive_loop_owned.get();
    }
    if (absl::Status s = BuildRoles(**send_loop, *receive_loop); !s.ok()) {
      return s;
    }
    std::vector<LoadLoop*> loops = {send_loop->get()};
    if (receive_loop != send_loop->get()) loops.push_back(receive_loop);

    const absl::Duration cpu_before = CpuTime();
    start_ns_ = NowNanos();
    std::vector<absl::Status> results(loops.size());
    std::atomic<bool> failed{false};
    std::vector<std::thread> threads;
    for (size_t i = 0; i < loops.size(); ++i) {
      threads.emplace_back([&, i] {
        results[i] = loops[i]->Run(stop_);
        if (!results[i].ok()) failed.store(true);
      });
    }

    const int64_t duration_ns = absl::ToInt64Nanoseconds(o_.duration);
    const int64_t timeout_ns = absl::ToInt64Nanoseconds(o_.timeout);
    int64_t last_change_ns = start_ns_;
    uint64_t last_received = 0;
    int64_t next_progress_ns = start_ns_ + kProgressIntervalNs;
    while (!failed.load()) {
      absl::SleepFor(kPollInterval);
      const int64_t now = NowNanos();
      if (!stop_sending_.load() && now - start_ns_ >= duration_ns) {
        stop_sending_.store(true);
        for (LoadLoop* loop : loops) loop->Wake();
      }
      if (Finished()) break;
      const uint64_t received = ReceivedSoFar();
      if (received != last_received) {
        last_received = received;
        last_change_ns = now;
      } else if (now - last_change_ns >= timeout_ns) {
        timed_out_ = true;
        break;
      }
      if (o_.on_progress && now >= next_progress_ns) {
        next_progress_ns += kProgressIntervalNs;
        o_.on_progress(LoadProgress{absl::Nanoseconds(now - start_ns_),
                                    SentSoFar(), received});
      }
    }
    stop_sending_.store(true);
    stop_.store(true);
    for (LoadLoop* loop : loops) loop->Wake();
    for (std::thread& t : threads) t.join();
    client_cpu_ = CpuTime() - cpu_before;
    for (const absl::Status& s : results) {
      if (!s.ok()) return s;
    }
    return absl::OkStatus();
  }

  absl::StatusOr<LoadReport> Report() {
    LoadReport r;
    r.options = o_;
    r.options.on_progress = nullptr;
    r.timed_out = timed_out_;
    r.client_cpu = client_cpu_;
    r.errors = errors_.count();
    r.first_error = errors_.first();
    int64_t first_ns = 0;
    int64_t last_ns = 0;
    auto first = [&first_ns](int64_t t) {
      if (t != 0 && (first_ns == 0 || t < first_ns)) first_ns = t;
    };
    if (tally_ != nullptr) {
      std::vector<uint64_t> sent;
      for (const auto& s : streams_) sent.push_back(s->sent.load());
      for (const auto& p : publishers_) first(p->first_send_ns());
      const ReceiveTally::Totals t = tally_->Finish(sent);
      for (uint64_t n : sent) r.sent += n;
      r.expected = t.expected;
      r.received = t.received;
      r.received_bytes = t.received_bytes;
      r.lost = t.lost;
      r.duplicates = t.duplicates;
      r.reordered = t.reordered;
      r.corrupt = t.corrupt;
      last_ns = t.last_arrival_ns;
    } else {
      std::vector<int64_t> samples;
      for (const auto& q : requesters_) {
        first(q->first_send_ns());
        last_ns = std::max(last_ns, q->last_answer_ns());
        r.corrupt += q->unexpected();
        if (q->failed() > 0) {
          r.errors += q->failed();
          if (r.first_error.empty()) {
            r.first_error = "a request was answered with an error status";
          }
        }
        samples.insert(samples.end(), q->samples().begin(), q->samples().end());
      }
      for (const auto& p : pingers_) {
        first(p->first_send_ns());
        last_ns = std::max(last_ns, p->last_answer_ns());
        r.corrupt += p->unexpected();
        samples.insert(samples.end(), p->samples().begin(), p->samples().end());
      }
      for (const auto& t : trips_) r.sent += t->sent.load();
      r.expected = r.sent;
      r.received = samples.size();
      r.received_bytes = r.received * o_.payload_bytes;
      r.lost = r.sent - std::min(r.sent, r.received);
      if (o_.scenario == Scenario::kDurable) {
        ReportDurable(r, samples, first, last_ns);
      } else if (o_.scenario == Scenario::kReplay) {
        ReportReplay(r, first, last_ns);
      }
      r.latency = Summarize(samples);
    }
    if (first_ns != 0 && last_ns > first_ns) {
      r.elapsed = absl::Nanoseconds(last_ns - first_ns);
      const double seconds = absl::ToDoubleSeconds(r.elapsed);
      r.sent_per_second = static_cast<double>(r.sent) / seconds;
      r.received_per_second = static_cast<double>(r.received) / seconds;
    }
    return r;
  }

  // Every durable publish is acked, refused or lost: acks are what arrived
  // (`samples` gets their latencies), refusals are errors.
  template <typename First>
  void ReportDurable(LoadReport& r, std::vector<int64_t>& samples, First& first,
                     int64_t& last_ns) {
    uint64_t acked = 0;
    uint64_t refused = 0;
    for (const auto& d : durable_publishers_) {
      first(d->first_send_ns());
      last_ns = std::max(last_ns, d->last_ack_ns());
      r.corrupt += d->unexpected();
      acked += d->acked();
      refused += d->refused();
      // Native refusals are Error frames, already in the loop's log.
      r.errors += d->refused_in_replies();
      if (r.first_error.empty() && !d->first_refusal().empty()) {
        r.first_error =
            absl::StrCat("a durable publish was refused: ", d->first_refusal());
      }
      samples.insert(samples.end(), d->samples().begin(), d->samples().end());
    }
    r.received = acked;
    r.received_bytes = acked * o_.payload_bytes;
    r.lost = r.sent - std::min(r.sent, acked + refused);
  }

  // A replay sends one subscription and expects `messages` stored ones.
  template <typename First>
  void ReportReplay(LoadReport& r, First& first, int64_t& last_ns) {
    const ReplayReader& reader = *replay_readers_.front();
    first(reader.subscribe_ns());
    last_ns = reader.last_arrival_ns();
    r.sent = 0;
    r.expected = o_.messages;
    r.received = reader.received();
    r.received_bytes = reader.received_bytes();
    r.lost = r.expected - std::min(r.expected, r.received) + reader.skipped();
    r.reordered = reader.out_of_order();
    if (reader.refused() && r.errors == 0) {
      r.errors = 1;
      r.first_error = "the server refused the replay";
    }
  }

  const LoadOptions o_;
  const Endpoint endpoint_;
  const std::vector<Endpoint> subscriber_endpoints_;
  // The run's TLS context when o_.tls.enabled; null otherwise.
  std::shared_ptr<const TlsClientContext> tls_;
  const std::unique_ptr<LoadWire> wire_;
  const Subjects subjects_;
  std::vector<std::unique_ptr<Link>> receivers_;
  std::vector<std::unique_ptr<Link>> senders_;

  ErrorLog errors_;
  std::atomic<bool> stop_sending_{false};
  std::atomic<bool> stop_{false};
  std::vector<std::unique_ptr<SendStream>> streams_;
  std::unique_ptr<ReceiveTally> tally_;
  std::vector<std::unique_ptr<Publisher>> publishers_;
  std::vector<std::unique_ptr<Subscriber>> subscribers_;
  std::vector<std::unique_ptr<RoundTrips>> trips_;
  std::vector<std::unique_ptr<Requester>> requesters_;
  std::vector<std::unique_ptr<Responder>> responders_;
  std::vector<std::unique_ptr<Pinger>> pingers_;
  std::vector<std::unique_ptr<DurablePublisher>> durable_publishers_;
  std::vector<std::unique_ptr<ReplayReader>> replay_readers_;

  int64_t start_ns_ = 0;
  bool timed_out_ = false;
  absl::Duration client_cpu_;
};

}  // namespace

absl::StatusOr<LoadReport> RunLoad(const LoadOptions& options) {
  absl::StatusOr<LoadOptions> resolved = ResolveOptions(options);
  if (!resolved.ok()) return resolved.status();
  absl::StatusOr<Endpoint> endpoint = LoopbackEndpoint(resolved->server);
  if (!endpoint.ok()) return endpoint.status();
  if (!resolved->bayeux_path.empty())
    return RunBayeuxLoad(*resolved, *endpoint);
  std::vector<Endpoint> subscriber_endpoints;
  for (const std::string& server : resolved->subscriber_servers) {
    absl::StatusOr<Endpoint> e = LoopbackEndpoint(server);
    if (!e.ok()) return e.status();
    subscriber_endpoints.push_back(*std::move(e));
  }
  LoadRun run(*std::move(resolved), *std::move(endpoint),
              std::move(subscriber_endpoints));
  return run.Go();
}

}  // namespace manifold::load
