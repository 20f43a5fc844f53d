// File: broker/auth/login_throttle.cc

#include "broker/auth/login_throttle.h"

#include <utility>

#include "absl/strings/match.h"

namespace manifold {

LoginThrottle::LoginThrottle(Options options) : options_(options) {}

absl::string_view LoginThrottle::HostOf(absl::string_view peer) {
  if (absl::StartsWith(peer, "[")) {
    const size_t close = peer.find(']');
    if (close != absl::string_view::npos) return peer.substr(1, close - 1);
    return peer;
  }
  const size_t colon = peer.rfind(':');
  // One colon: host:port. None, or several (a bare IPv6 address): no port.
  if (colon == absl::string_view::npos || peer.find(':') != colon) {
    return peer;
  }
  return peer.substr(0, colon);
}

bool LoginThrottle::Blocked(absl::string_view host, absl::Time now) const {
  auto it = failures_.find(host);
  if (it == failures_.end() || Expired(it->second, now)) return false;
  return it->second.count >= options_.max_failures;
}

void LoginThrottle::RecordFailure(absl::string_view host, absl::Time now) {
  auto it = failures_.find(host);
  if (it == failures_.end()) {
    if (failures_.size() >= options_.max_addresses) MakeRoom(now);
    it = failures_.emplace(std::string(host), Failures()).first;
  } else if (Expired(it->second, now)) {
    it->second = Failures();
  }
  ++it->second.count;
  it->second.last = now;
}

void LoginThrottle::MakeRoom(absl::Time now) {
  absl::erase_if(failures_,
                 [&](const auto& entry) { return Expired(entry.second, now); });
  if (failures_.size() < options_.max_addresses) return;
  auto oldest = failures_.begin();
  for (auto it = failures_.begin(); it != failures_.end(); ++it) {
    if (it->second.last < oldest->second.last) oldest = it;
  }
  failures_.erase(oldest);
}

}  // namespace manifold
