#include "tests/e2e/testing/healthy_pair.h"

#include <chrono>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace manifold::testing {
namespace {

using Clock = std::chrono::steady_clock;

int64_t NowNanos() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             Clock::now().time_since_epoch())
      .count();
}

// A message's payload: "<sequence number> <steady clock at publish, ns>".
std::string EncodePayload(uint64_t sequence) {
  return absl::StrCat(sequence, " ", NowNanos());
}

bool DecodePayload(absl::string_view payload, uint64_t& sequence,
                   int64_t& sent_nanos) {
  std::vector<absl::string_view> parts = absl::StrSplit(payload, ' ');
  return parts.size() == 2 && absl::SimpleAtoi(parts[0], &sequence) &&
         absl::SimpleAtoi(parts[1], &sent_nanos);
}

}  // namespace

std::string HealthyPair::Report::ToString() const {
  return absl::StrCat("published ", published, ", received ", received,
                      ", out of order ", out_of_order, ", max latency ",
                      absl::FormatDuration(max_latency),
                      problem.empty() ? "" : ", problem: ", problem);
}

absl::StatusOr<std::unique_ptr<HealthyPair>> HealthyPair::Start(
    const Endpoint& endpoint, absl::string_view topic,
    absl::Duration interval) {
  absl::StatusOr<WireClient> subscriber = WireClient::Connect(endpoint);
  if (!subscriber.ok()) return subscriber.status();
  if (auto welcome = subscriber->Hello("healthy-subscriber"); !welcome.ok()) {
    return welcome.status();
  }
  if (auto id = subscriber->Subscribe(topic); !id.ok()) return id.status();
  absl::StatusOr<WireClient> publisher = WireClient::Connect(endpoint);
  if (!publisher.ok()) return publisher.status();
  if (auto welcome = publisher->Hello("healthy-publisher"); !welcome.ok()) {
    return welcome.status();
  }
  std::unique_ptr<HealthyPair> pair(
      new HealthyPair(*std::move(publisher), *std::move(subscriber),
                      std::string(topic), interval));
  pair->subscribe_thread_ = std::thread([p = pair.get()] { p->Subscribe(); });
  pair->publish_thread_ = std::thread([p = pair.get()] { p->Publish(); });
  return pair;
}

HealthyPair::HealthyPair(WireClient publisher, WireClient subscriber,
                         std::string topic, absl::Duration interval)
    : topic_(std::move(topic)),
      interval_(interval),
      publisher_(std::move(publisher)),
      subscriber_(std::move(subscriber)) {}

HealthyPair::~HealthyPair() { Stop(); }

void HealthyPair::Publish() {
  const auto interval = absl::ToChronoNanoseconds(interval_);
  Clock::time_point next = Clock::now();
  for (uint64_t sequence = 1; !stop_publishing_.load(); ++sequence) {
    if (absl::Status sent = publisher_.Publish(topic_, EncodePayload(sequence));
        !sent.ok()) {
      NoteProblem(
          absl::StrCat("publishing #", sequence, ": ", sent.ToString()));
      return;
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      published_ = sequence;
    }
    // A steady rate; after a stall, carry on from now rather than catch up
    // in a burst.
    next += interval;
    const Clock::time_point now = Clock::now();
    if (next < now - std::chrono::milliseconds(100)) next = now;
    std::this_thread::sleep_until(next);
  }
}

void HealthyPair::Subscribe() {
  uint64_t expected = 1;
  while (!stop_subscribing_.load()) {
    absl::StatusOr<wire::ServerMessage> m =
        subscriber_.Receive(absl::Milliseconds(50));
    if (absl::IsDeadlineExceeded(m.status())) continue;
    if (!m.ok()) {
      NoteProblem(absl::StrCat("subscriber: ", m.status().ToString()));
      return;
    }
    if (m->has_ping()) {
      wire::ClientMessage pong;
      pong.mutable_pong()->set_op_id(m->ping().op_id());
      if (absl::Status sent = subscriber_.Send(pong); !sent.ok()) {
        NoteProblem(absl::StrCat("answering a ping: ", sent.ToString()));
        return;
      }
      continue;
    }
    uint64_t sequence = 0;
    int64_t sent_nanos = 0;
    if (!m->has_deliver() ||
        !DecodePayload(m->deliver().payload(), sequence, sent_nanos)) {
      NoteProblem(absl::StrCat("unexpected message: ", m->ShortDebugString()));
      continue;
    }
    const absl::Duration latency = absl::Nanoseconds(NowNanos() - sent_nanos);
    std::lock_guard<std::mutex> lock(mu_);
    if (sequence != expected) {
      ++out_of_order_;
      if (problem_.empty()) {
        problem_ = absl::StrCat("expected #", expected, ", got #", sequence);
      }
    }
    expected = sequence + 1;
    ++received_;
    max_latency_ = std::max(max_latency_, latency);
    progress_.notify_all();
  }
}

void HealthyPair::NoteProblem(std::string problem) {
  std::lock_guard<std::mutex> lock(mu_);
  if (problem_.empty()) problem_ = std::move(problem);
  progress_.notify_all();
}

bool HealthyPair::WaitForProgress(uint64_t count, absl::Duration timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  const uint64_t target = received_ + count;
  return progress_.wait_for(lock, absl::ToChronoNanoseconds(timeout),
                            [&] { return received_ >= target; });
}

HealthyPair::Report HealthyPair::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopped_) return report_;
  }
  stop_publishing_ = true;
  if (publish_thread_.joinable()) publish_thread_.join();
  {
    std::unique_lock<std::mutex> lock(mu_);
    progress_.wait_for(lock, std::chrono::seconds(5), [&] {
      return received_ >= published_ || !problem_.empty();
    });
  }
  stop_subscribing_ = true;
  if (subscribe_thread_.joinable()) subscribe_thread_.join();
  std::lock_guard<std::mutex> lock(mu_);
  stopped_ = true;
  report_.published = published_;
  report_.received = received_;
  report_.out_of_order = out_of_order_;
  report_.max_latency = max_latency_;
  report_.problem = problem_;
  if (report_.problem.empty() && received_ < published_) {
    report_.problem = absl::StrCat(published_ - received_,
                                   " messages did not arrive within 5s");
  }
  return report_;
}

}  // namespace manifold::testing
