// File: examples/tcp_broker/admission.h
// -----------------------------------------------------------------------------
//
// manifoldd's gatekeeper. With users or a token configured (--user/--pass,
// --token, the `auth` section), the broker runs with admission on, and each
// ConnectionPending event comes here: the credentials the client presented
// (and its verified TLS certificate, if any) are checked by an
// Authenticator, and the connection is admitted as its user, with that
// user's permissions, or refused. Failed logins are refused after a delay
// and, past a limit per address, refused unchecked for a while.
//
// A password or hashed token costs some milliseconds of crypt(3). With a
// `wake` function, those checks run on a worker thread (password_checker.h)
// and the loop goes on serving everyone else; the worker calls `wake`
// (SocketServer::Wake) when one is done, and the loop finishes the login in
// TakeChecked(). At most kMaxChecksWaiting logins wait for the worker, at
// most kMaxChecksPerAddress of them from one address; more are refused at
// once ("busy"). Without `wake` they run inline.
//
//   absl::StatusOr<std::unique_ptr<Admission>> admission =
//       Admission::Create(config, RandomBytes(32), [&] { server->Wake(); });
//   options.broker.set_require_admission(true);
//   options.driver.on_event = [&](const wire::BrokerEvent& e) {
//     if (e.has_connection_pending())
//       admission->OnPending(e.connection_pending(), driver);
//   };
//   options.driver.before_turn = [&](BrokerDriver& driver) {
//     admission->TakeChecked(driver);
//   };
//
// Thread safety: call it from the loop's thread only; `wake` is called from
// the worker.

#ifndef MANIFOLD_EXAMPLES_TCP_BROKER_ADMISSION_H_
#define MANIFOLD_EXAMPLES_TCP_BROKER_ADMISSION_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "broker/auth/authenticator.h"
#include "broker/auth/login_throttle.h"
#include "core/manifold.pb.h"
#include "examples/tcp_broker/password_checker.h"
#include "examples/tcp_broker/server_config.pb.h"
#include "transports/driver/broker_driver.h"

namespace manifold {

// The users manifoldd admits: the `auth` section, plus a user for
// --user/--pass and one named "token" for --token. A --pass that is not a
// crypt(3) hash is hashed here with `salt` (kPasswordSaltBytes random
// bytes). Returns INVALID_ARGUMENT for --user without --pass or the reverse.
absl::StatusOr<AuthConfig> EffectiveAuthConfig(const ServerConfig& config,
                                               absl::string_view salt);

// Whether `config` asks for authentication at all.
bool AuthenticationConfigured(const ServerConfig& config);

// INVALID_ARGUMENT when `config` has --user without --pass or the reverse;
// OK otherwise.
absl::Status CheckUserAndPass(const ServerConfig& config);

class Admission {
 public:
  struct Counters {
    uint64_t admitted = 0;
    // Credentials that did not check out (or none where some are needed).
    uint64_t refused = 0;
    // Refused unchecked: the address had failed too often.
    uint64_t throttled = 0;
    // Refused unchecked: too many logins were waiting for the worker.
    uint64_t busy = 0;
  };

  // Logins waiting for (or in) the worker at once, in all and per address.
  static constexpr size_t kMaxChecksWaiting = 64;
  static constexpr int kMaxChecksPerAddress = 4;

  // `auth` as EffectiveAuthConfig() made it; `cache_key`: at least 16 random
  // bytes (see Authenticator); `wake`: see the file comment (nullptr: checks
  // run inline). Returns the Authenticator's error for a bad configuration.
  static absl::StatusOr<std::unique_ptr<Admission>> Create(
      const AuthConfig& auth, absl::string_view cache_key,
      std::function<void()> wake = nullptr);

  // Admits or refuses the connection `pending` names, through `driver`, at
  // once or, when a hash must be checked on the worker, in a later
  // TakeChecked(). A TLS client certificate the link verified
  // (BrokerDriver::peer_identity) counts as a credential: its subject,
  // "DNS:name" and "email:address".
  void OnPending(const wire::ConnectionPending& pending, BrokerDriver& driver);

  // Admits or refuses, through `driver`, the connections whose checks the
  // worker has finished. A connection that closed meanwhile is skipped.
  void TakeChecked(BrokerDriver& driver);

  // Logins waiting for the worker.
  size_t checks_waiting() const { return waiting_.size(); }

  // Takes a changed configuration (SIGHUP): later logins are checked against
  // it (the throttle keeps its counts), and every admitted connection gets
  // its user's new permissions through `driver` (BrokerDriver::Regrant:
  // what they no longer allow ends, nobody is disconnected). A user no
  // longer configured keeps its connections but may do nothing more.
  // Returns the Authenticator's error and changes nothing then.
  absl::Status Reload(const AuthConfig& auth, BrokerDriver& driver);

  // The Authenticator in use (for applying reloaded permissions).
  const Authenticator& authenticator() const { return *authenticator_; }
  const Counters& counters() const { return counters_; }

 private:
  // A login whose check is on the worker.
  struct Waiting {
    ConnectionId id;
    std::string host;
  };

  Admission(std::unique_ptr<Authenticator> authenticator,
            const AuthConfig& auth, std::string cache_key,
            std::function<void()> wake);
  // Admits with `grant`, or refuses (after failure_delay_) and counts the
  // failure against `host`.
  void Answer(ConnectionId id, absl::string_view host,
              absl::StatusOr<Grant> grant, BrokerDriver& driver);

  std::unique_ptr<Authenticator> authenticator_;
  LoginThrottle throttle_;
  absl::Duration failure_delay_;
  std::string cache_key_;
  Counters counters_;
  // What a connection of a user who is no longer configured may do: nothing.
  std::shared_ptr<const PermissionSet> nothing_;
  // Logins on the worker, by tag, and how many per address.
  absl::flat_hash_map<uint64_t, Waiting> waiting_;
  absl::flat_hash_map<std::string, int> waiting_by_host_;
  uint64_t next_tag_ = 1;
  // Last: its worker is stopped before the rest goes. nullptr: inline.
  std::unique_ptr<PasswordChecker> checker_;
};

}  // namespace manifold

#endif  // MANIFOLD_EXAMPLES_TCP_BROKER_ADMISSION_H_
