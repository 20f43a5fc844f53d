#include "tests/e2e/testing/removal_watcher.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "broker/sys_topics.h"

namespace manifold::testing {

absl::StatusOr<std::unique_ptr<RemovalWatcher>> RemovalWatcher::Start(
    const Endpoint& endpoint) {
  absl::StatusOr<WireClient> client = WireClient::Connect(endpoint);
  if (!client.ok()) return client.status();
  if (auto welcome = client->Hello("removal-watcher"); !welcome.ok()) {
    return welcome.status();
  }
  if (auto id = client->Subscribe(sys_topics::kConnectionRemoved); !id.ok()) {
    return id.status();
  }
  std::unique_ptr<RemovalWatcher> watcher(
      new RemovalWatcher(*std::move(client)));
  watcher->thread_ = std::thread([w = watcher.get()] { w->Run(); });
  return watcher;
}

RemovalWatcher::RemovalWatcher(WireClient client)
    : client_(std::move(client)) {}

RemovalWatcher::~RemovalWatcher() { Stop(); }

void RemovalWatcher::Run() {
  while (!stop_.load()) {
    absl::StatusOr<wire::ServerMessage> m =
        client_.Receive(absl::Milliseconds(50));
    if (absl::IsDeadlineExceeded(m.status())) continue;
    absl::Status problem;
    wire::BrokerEvent event;
    if (!m.ok()) {
      problem = m.status();
    } else if (m->has_ping()) {
      wire::ClientMessage pong;
      pong.mutable_pong()->set_op_id(m->ping().op_id());
      problem = client_.Send(pong);
    } else if (!m->has_deliver() ||
               !event.ParseFromString(m->deliver().payload()) ||
               !event.has_connection_removed()) {
      problem = absl::InternalError(
          absl::StrCat("unexpected message: ", m->ShortDebugString()));
    } else {
      std::lock_guard<std::mutex> lock(mu_);
      removals_.push_back(event.connection_removed());
      changed_.notify_all();
      continue;
    }
    if (!problem.ok()) {
      std::lock_guard<std::mutex> lock(mu_);
      status_ = problem;
      changed_.notify_all();
      return;
    }
  }
}

absl::StatusOr<wire::ConnectionRemoved> RemovalWatcher::WaitForClient(
    absl::string_view client_name, absl::Duration timeout) {
  absl::StatusOr<std::vector<wire::ConnectionRemoved>> found = WaitForCount(
      1,
      [&](const wire::ConnectionRemoved& r) {
        return r.client_name() == client_name;
      },
      timeout);
  if (!found.ok()) {
    return absl::DeadlineExceededError(
        absl::StrCat("'", client_name, "' was not removed within ",
                     absl::FormatDuration(timeout)));
  }
  return found->front();
}

absl::StatusOr<std::vector<wire::ConnectionRemoved>>
RemovalWatcher::WaitForCount(
    size_t count,
    const std::function<bool(const wire::ConnectionRemoved&)>& match,
    absl::Duration timeout) {
  std::vector<wire::ConnectionRemoved> matching;
  auto enough = [&] {
    matching.clear();
    for (const wire::ConnectionRemoved& r : removals_) {
      if (match(r)) matching.push_back(r);
    }
    return matching.size() >= count || !status_.ok();
  };
  std::unique_lock<std::mutex> lock(mu_);
  changed_.wait_for(lock, absl::ToChronoNanoseconds(timeout), enough);
  if (matching.size() >= count) return matching;
  if (!status_.ok()) return status_;
  return absl::DeadlineExceededError(
      absl::StrCat(matching.size(), " of ", count, " expected removals within ",
                   absl::FormatDuration(timeout)));
}

std::vector<wire::ConnectionRemoved> RemovalWatcher::removals() {
  std::lock_guard<std::mutex> lock(mu_);
  return removals_;
}

absl::Status RemovalWatcher::status() {
  std::lock_guard<std::mutex> lock(mu_);
  return status_;
}

void RemovalWatcher::Stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

}  // namespace manifold::testing
