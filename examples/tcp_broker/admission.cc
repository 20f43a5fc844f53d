// File: examples/tcp_broker/admission.cc

#include "examples/tcp_broker/admission.h"

#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "broker/auth/password_hash.h"

namespace manifold {
namespace {

LoginThrottle::Options ThrottleOptions(const AuthConfig& auth) {
  LoginThrottle::Options options;
  options.max_failures = auth.max_failed_logins();
  options.window = absl::Milliseconds(auth.failed_login_window_ms());
  return options;
}

}  // namespace

bool AuthenticationConfigured(const ServerConfig& config) {
  return !config.user().empty() || !config.pass().empty() ||
         !config.token().empty() || config.auth().users_size() > 0;
}

absl::Status CheckUserAndPass(const ServerConfig& config) {
  if (config.user().empty() == config.pass().empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(
      config.user().empty() ? "--pass needs --user" : "--user needs --pass");
}

absl::StatusOr<AuthConfig> EffectiveAuthConfig(const ServerConfig& config,
                                               absl::string_view salt) {
  if (absl::Status s = CheckUserAndPass(config); !s.ok()) return s;
  AuthConfig auth = config.auth();
  if (!config.user().empty()) {
    UserConfig* user = auth.add_users();
    user->set_name(config.user());
    if (absl::StartsWith(config.pass(), "$")) {
      user->set_password_hash(config.pass());
    } else {
      absl::StatusOr<std::string> hash = HashPassword(config.pass(), salt);
      if (!hash.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat("--pass: ", hash.status().message()));
      }
      user->set_password_hash(*std::move(hash));
    }
  }
  if (!config.token().empty()) {
    UserConfig* user = auth.add_users();
    user->set_name("token");
    user->add_tokens(config.token());
  }
  return auth;
}

absl::StatusOr<std::unique_ptr<Admission>> Admission::Create(
    const AuthConfig& auth, absl::string_view cache_key,
    std::function<void()> wake) {
  absl::StatusOr<std::unique_ptr<Authenticator>> authenticator =
      Authenticator::Create(auth, cache_key);
  if (!authenticator.ok()) return authenticator.status();
  return std::unique_ptr<Admission>(new Admission(*std::move(authenticator),
                                                  auth, std::string(cache_key),
                                                  std::move(wake)));
}

Admission::Admission(std::unique_ptr<Authenticator> authenticator,
                     const AuthConfig& auth, std::string cache_key,
                     std::function<void()> wake)
    : authenticator_(std::move(authenticator)),
      throttle_(ThrottleOptions(auth)),
      failure_delay_(absl::Milliseconds(auth.failed_login_delay_ms())),
      cache_key_(std::move(cache_key)) {
  if (wake) {
    checker_ =
        std::make_unique<PasswordChecker>(kMaxChecksWaiting, std::move(wake));
  }
  Permissions none;
  for (TopicRules* rules : {none.mutable_publish(), none.mutable_subscribe(),
                            none.mutable_serve(), none.mutable_request()}) {
    rules->add_deny("**");
  }
  nothing_ = *PermissionSet::Compile(none);
}

absl::Status Admission::Reload(const AuthConfig& auth, BrokerDriver& driver) {
  absl::StatusOr<std::unique_ptr<Authenticator>> authenticator =
      Authenticator::Create(auth, cache_key_);
  if (!authenticator.ok()) return authenticator.status();
  authenticator_ = *std::move(authenticator);
  failure_delay_ = absl::Milliseconds(auth.failed_login_delay_ms());
  const auto by_user = authenticator_->PermissionsByUser();
  driver.Regrant(
      [&](absl::string_view user) -> std::shared_ptr<const PermissionSet> {
        if (user.empty()) return authenticator_->anonymous_permissions();
        auto it = by_user.find(user);
        return it != by_user.end() ? it->second : nothing_;
      });
  return absl::OkStatus();
}

void Admission::OnPending(const wire::ConnectionPending& pending,
                          BrokerDriver& driver) {
  const ConnectionId id(pending.session_id());
  const absl::string_view host = LoginThrottle::HostOf(pending.peer());
  const absl::Time now = driver.Now();
  if (throttle_.Blocked(host, now)) {
    ++counters_.throttled;
    // Refused unchecked and at once: holding these open would let a
    // guesser tie up connections instead.
    driver.Refuse(id, "too many failed logins from this address; try later")
        .IgnoreError();
    return;
  }
  std::vector<std::string> names;
  if (const PeerIdentity* peer = driver.peer_identity(id)) {
    names.push_back(peer->subject);
    for (const std::string& dns : peer->dns_names) {
      names.push_back(absl::StrCat("DNS:", dns));
    }
    for (const std::string& email : peer->emails) {
      names.push_back(absl::StrCat("email:", email));
    }
  }
  Credentials credentials;
  credentials.token = pending.auth_token();
  credentials.user = pending.user();
  credentials.password = pending.password();
  credentials.certificate_names = names;
  credentials.session_user = pending.session_user();
  Authenticator::Login login = authenticator_->Begin(credentials);
  if (login.answer.has_value()) {
    Answer(id, host, *std::move(login.answer), driver);
    return;
  }
  if (checker_ == nullptr) {
    login.check->Run();
    Answer(id, host, authenticator_->Finish(*login.check), driver);
    return;
  }
  int& from_host = waiting_by_host_[std::string(host)];
  const uint64_t tag = next_tag_++;
  if (from_host >= kMaxChecksPerAddress ||
      !checker_->Submit(tag, *std::move(login.check))) {
    if (from_host == 0) waiting_by_host_.erase(std::string(host));
    ++counters_.busy;
    driver
        .Refuse(id, from_host >= kMaxChecksPerAddress
                        ? "too many logins from this address at once; try "
                          "later"
                        : "too many logins are being checked; try later")
        .IgnoreError();
    return;
  }
  ++from_host;
  waiting_.emplace(tag, Waiting{id, std::string(host)});
}

void Admission::TakeChecked(BrokerDriver& driver) {
  if (checker_ == nullptr) return;
  for (PasswordChecker::Finished& done : checker_->TakeFinished()) {
    auto it = waiting_.find(done.tag);
    if (it == waiting_.end()) continue;
    const Waiting waiting = std::move(it->second);
    waiting_.erase(it);
    auto host = waiting_by_host_.find(waiting.host);
    if (host != waiting_by_host_.end() && --host->second <= 0) {
      waiting_by_host_.erase(host);
    }
    // Users as configured now: a reload while the hash was checked counts.
    Answer(waiting.id, waiting.host, authenticator_->Finish(done.check),
           driver);
  }
}

void Admission::Answer(ConnectionId id, absl::string_view host,
                       absl::StatusOr<Grant> grant, BrokerDriver& driver) {
  if (!grant.ok()) {
    ++counters_.refused;
    throttle_.RecordFailure(host, driver.Now());
    driver.Refuse(id, grant.status().message(), failure_delay_).IgnoreError();
    return;
  }
  // A success does not clear the address's failures: one good account
  // would otherwise let its holder guess others' passwords without limit.
  ++counters_.admitted;
  driver.Admit(id, *std::move(grant)).IgnoreError();
}

}  // namespace manifold
