// File: broker/auth/login_throttle.h
// -----------------------------------------------------------------------------
//
// Slows down password guessing: counts failed logins per client address and
// says when an address has failed too often to be checked again for a while.
// The caller supplies the time; nothing here reads a clock.
//
//   LoginThrottle throttle({.max_failures = 5, .window = absl::Minutes(1)});
//   std::string host = LoginThrottle::HostOf(pending.peer());  // no port
//   if (throttle.Blocked(host, now)) { refuse: "too many failed logins" }
//   else if (!Authenticate(...).ok()) { throttle.RecordFailure(host, now); }
//
// An address is blocked once it has `max_failures` failures, each less than
// `window` after the one before; it is unblocked (and forgotten) once
// `window` has passed since its last failure. At most `max_addresses` are
// remembered: when a new one comes and the table is full, forgotten ones are
// dropped first, then the one whose last failure is oldest.

#ifndef MANIFOLD_BROKER_AUTH_LOGIN_THROTTLE_H_
#define MANIFOLD_BROKER_AUTH_LOGIN_THROTTLE_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace manifold {

class LoginThrottle {
 public:
  struct Options {
    uint32_t max_failures = 5;
    absl::Duration window = absl::Minutes(1);
    size_t max_addresses = 16384;
  };

  // REQUIRES: options.max_failures >= 1, options.window > 0,
  // options.max_addresses >= 1.
  explicit LoginThrottle(Options options);

  // The host part of a peer address as the broker writes it
  // ("10.0.0.7:5123" -> "10.0.0.7", "[::1]:5123" -> "::1"); an address
  // without a port (a Unix socket) is returned whole.
  static absl::string_view HostOf(absl::string_view peer);

  // Whether logins from `host` are refused unchecked at `now`.
  bool Blocked(absl::string_view host, absl::Time now) const;

  // Counts a failed login from `host` at `now`.
  void RecordFailure(absl::string_view host, absl::Time now);

  // Addresses remembered now.
  size_t tracked() const { return failures_.size(); }

  const Options& options() const { return options_; }

 private:
  struct Failures {
    uint32_t count = 0;
    absl::Time last = absl::InfinitePast();
  };
  bool Expired(const Failures& f, absl::Time now) const {
    return now - f.last >= options_.window;
  }
  void MakeRoom(absl::Time now);

  Options options_;
  absl::flat_hash_map<std::string, Failures> failures_;
};

}  // namespace manifold

#endif  // MANIFOLD_BROKER_AUTH_LOGIN_THROTTLE_H_
