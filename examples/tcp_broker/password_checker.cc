#include "examples/tcp_broker/password_checker.h"

#include <utility>

namespace manifold {

PasswordChecker::PasswordChecker(size_t max_waiting, std::function<void()> wake)
    : max_waiting_(max_waiting),
      wake_(std::move(wake)),
      worker_([this] { Work(); }) {}

PasswordChecker::~PasswordChecker() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  work_ready_.notify_one();
  worker_.join();
}

bool PasswordChecker::Submit(uint64_t tag, PasswordCheck check) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (outstanding_ >= max_waiting_) return false;
    ++outstanding_;
    waiting_.push_back(Finished{tag, std::move(check)});
  }
  work_ready_.notify_one();
  return true;
}

std::vector<PasswordChecker::Finished> PasswordChecker::TakeFinished() {
  std::vector<Finished> out;
  std::lock_guard<std::mutex> lock(mutex_);
  out.swap(finished_);
  outstanding_ -= out.size();
  return out;
}

size_t PasswordChecker::outstanding() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return outstanding_;
}

void PasswordChecker::Work() {
  for (;;) {
    Finished item;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      work_ready_.wait(lock, [this] { return stopping_ || !waiting_.empty(); });
      if (stopping_) return;
      item = std::move(waiting_.front());
      waiting_.pop_front();
    }
    // The slow part, with no lock held.
    item.check.Run();
    {
      std::lock_guard<std::mutex> lock(mutex_);
      finished_.push_back(std::move(item));
    }
    if (wake_) wake_();
  }
}

}  // namespace manifold
