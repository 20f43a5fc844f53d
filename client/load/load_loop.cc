#include "client/load/load_loop.h"

#include <sys/epoll.h>

#include <chrono>
#include <utility>

#include "absl/strings/str_cat.h"

namespace manifold::load {
namespace {

constexpr int kMaxEvents = 64;
// The longest a loop sleeps before it looks at its stop flag again.
constexpr int kIdleWaitMs = 20;
// Input read from one link per turn before the others get a turn.
constexpr size_t kReadBudget = 1 << 20;

}  // namespace

int64_t NowNanos() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

void ErrorLog::Add(const std::string& link, const std::string& text) {
  absl::MutexLock lock(&mutex_);
  if (count_++ == 0) first_ = absl::StrCat(link, ": ", text);
}

uint64_t ErrorLog::count() const {
  absl::MutexLock lock(&mutex_);
  return count_;
}

std::string ErrorLog::first() const {
  absl::MutexLock lock(&mutex_);
  return first_;
}

absl::StatusOr<std::unique_ptr<LoadLoop>> LoadLoop::Create(ErrorLog& errors) {
  absl::StatusOr<WakeableEpoll> epoll = WakeableEpoll::Create();
  if (!epoll.ok()) return epoll.status();
  return std::unique_ptr<LoadLoop>(new LoadLoop(*std::move(epoll), errors));
}

LoadLoop::LoadLoop(WakeableEpoll epoll, ErrorLog& errors)
    : epoll_(std::move(epoll)), errors_(errors) {}

void LoadLoop::Add(Link& link, Role& role) {
  members_.push_back(Member{&link, &role});
}

void LoadLoop::AddTurnHook(std::function<void()> hook) {
  hooks_.push_back(std::move(hook));
}

void LoadLoop::Wake() { epoll_.Wake(); }

absl::Status LoadLoop::Flush(size_t index) {
  Member& m = members_[index];
  if (absl::Status s = m.link->Flush(); !s.ok()) return s;
  const bool want_write = m.link->pending_output() > 0;
  if (want_write == m.want_write) return absl::OkStatus();
  // Level-triggered: ask for writability only while output waits.
  m.want_write = want_write;
  const uint32_t events = want_write ? EPOLLIN | EPOLLOUT : EPOLLIN;
  return epoll_.Modify(m.link->fd(), events, index);
}

absl::Status LoadLoop::ReadAll(size_t index, int64_t now_ns) {
  Member& m = members_[index];
  Link& link = *m.link;
  ServerEvent event;
  size_t budget = kReadBudget;
  while (true) {
    absl::StatusOr<size_t> read = link.Fill();
    if (!read.ok()) return read.status();
    while (true) {
      absl::StatusOr<bool> got = link.Next(event);
      if (!got.ok()) return got.status();
      if (!*got) break;
      switch (event.kind) {
        case ServerEvent::Kind::kPing:
          link.wire().AppendPong(event, link.output());
          break;
        case ServerEvent::Kind::kError:
          if (event.fatal) {
            return absl::FailedPreconditionError(
                absl::StrCat(link.name(), ": the server said ", event.text));
          }
          errors_.Add(link.name(), event.text);
          // The role may be waiting for the operation that failed.
          m.role->OnEvent(link, event, now_ns);
          break;
        default:
          m.role->OnEvent(link, event, now_ns);
      }
    }
    // Level-triggered epoll reports the link again when more arrives.
    if (link.drained() || *read >= budget) break;
    budget -= *read;
  }
  return Flush(index);
}

absl::Status LoadLoop::Run(const std::atomic<bool>& stop) {
  for (size_t i = 0; i < members_.size(); ++i) {
    if (absl::Status s = epoll_.Add(members_[i].link->fd(), EPOLLIN, i);
        !s.ok()) {
      return s;
    }
  }
  epoll_event events[kMaxEvents];
  while (!stop.load(std::memory_order_relaxed)) {
    int64_t now = NowNanos();
    bool again = false;
    for (size_t i = 0; i < members_.size(); ++i) {
      Member& m = members_[i];
      // A link still writing its last batch gets no more until it drains.
      if (m.want_write) continue;
      again |= m.role->Pump(*m.link, now);
      if (m.link->pending_output() > 0) {
        if (absl::Status s = Flush(i); !s.ok()) return s;
      }
    }
    absl::StatusOr<int> n =
        epoll_.Wait(absl::MakeSpan(events), again ? 0 : kIdleWaitMs);
    if (!n.ok()) return n.status();
    now = NowNanos();
    for (int k = 0; k < *n; ++k) {
      const size_t index = static_cast<size_t>(events[k].data.u64);
      if (events[k].events & EPOLLOUT) {
        if (absl::Status s = Flush(index); !s.ok()) return s;
      }
      if (events[k].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
        if (absl::Status s = ReadAll(index, now); !s.ok()) return s;
      }
    }
    for (const auto& hook : hooks_) hook();
  }
  return absl::OkStatus();
}

}  // namespace manifold::load
