#include "transports/driver/broker_driver.h"

#include <algorithm>
#include <array>
#include <chrono>

#include "absl/strings/str_cat.h"
#include "core/status.h"
#include "transports/driver/os_session_id_source.h"

namespace manifold {
namespace {

// Chunks handed to one WriteSome() call: plenty for writev, small enough to
// live on the stack.
constexpr size_t kMaxWriteChunks = 64;

// A lingering close (Link::draining) lasts at most this long (and no longer
// than close_linger_ms), and drops at most this much of the peer's input.
constexpr absl::Duration kDrainTime = absl::Milliseconds(500);
constexpr size_t kMaxDrainedBytes = 8 << 20;

std::string Quoted(absl::string_view name) {
  return name.empty() ? std::string() : absl::StrCat(" '", name, "'");
}

size_t TotalSize(absl::Span<const absl::string_view> chunks) {
  size_t total = 0;
  for (absl::string_view chunk : chunks) total += chunk.size();
  return total;
}

}  // namespace

absl::Time MonotonicNow() {
  return absl::UnixEpoch() +
         absl::FromChrono(std::chrono::steady_clock::now().time_since_epoch());
}

namespace {

// The operating system's randomness, seen by the observer if there is one.
std::unique_ptr<SessionIdSource> SessionIds(DriverObserver* observer) {
  std::unique_ptr<SessionIdSource> source = OsSessionIdSource();
  return observer == nullptr ? std::move(source)
                             : observer->WrapSessionIds(std::move(source));
}

}  // namespace

BrokerDriver::BrokerDriver(BrokerOptions broker_options, DriverOptions options)
    : options_(std::move(options)),
      broker_(std::move(broker_options), SessionIds(options_.observer)) {
  if (options_.observer != nullptr) options_.observer->OnAttach(broker_);
}

BrokerDriver::~BrokerDriver() = default;

// ---------------------------------------------------------------------------
// What the adapter reports

ConnectionId BrokerDriver::Open(LinkIo& io, PeerInfo peer,
                                std::unique_ptr<ProtocolCodec> codec,
                                std::unique_ptr<LinkSecurity> security) {
  const absl::Time now = Now();
  Connection& c = codec ? broker_.Accept(std::move(peer), now, std::move(codec))
                        : broker_.Accept(std::move(peer), now);
  const ConnectionId id = c.id();
  Link& link = links_[id];
  link.io = &io;
  link.submitted = io.write_style() == WriteStyle::kSubmitted;
  if (security != nullptr) {
    link.clear_output = security->clear_until_first_input();
    link.security = std::move(security);
    link.handshake_deadline = now + options_.tls_handshake_timeout;
    handshake_deadlines_.emplace(*link.handshake_deadline, id);
    // The first secured link lists the counters, at zero, in the broker's
    // statistics; a driver without TLS leaves them out.
    if (!tls_reported_) ReportTlsStatistics();
  }
  ++stats_.links_opened;
  if (options_.observer != nullptr) {
    options_.observer->OnOpen(id, c.peer(), c.protocol(), now);
  }
  if (c.state() == ConnectionState::kClosing) {
    options_.logger.Log(
        LogLevel::kWarning,
        absl::StrCat("refused connection from ", c.peer().address, ": ",
                     c.close_reason().message()));
  } else if (options_.logger.enabled(LogLevel::kDebug)) {
    options_.logger.Log(
        LogLevel::kDebug,
        absl::StrCat("accepted connection from ", c.peer().address, " as ",
                     id.ToString(), " (", c.protocol(), ")"));
  }
  // Any greeting or refusal the connection already holds is written by the
  // next RunTurn(): Accept() put the connection on the changed list.
  return id;
}

absl::Status BrokerDriver::Admit(ConnectionId id) {
  return broker_.Admit(id, Now());
}

absl::Status BrokerDriver::Admit(ConnectionId id, Grant grant) {
  return broker_.Admit(id, std::move(grant), Now());
}

absl::Status BrokerDriver::Refuse(ConnectionId id, absl::string_view reason,
                                  absl::Duration delay) {
  return broker_.Refuse(id, reason, Now(), delay);
}

void BrokerDriver::OnReceived(ConnectionId id, absl::string_view bytes) {
  Link* link = Find(id);
  if (link == nullptr || link->peer_closed || !link->error.ok()) return;
  Connection* c = broker_.FindConnection(id);
  if (c == nullptr) return;
  const absl::Time now = Now();
  stats_.bytes_received += bytes.size();
  if (link->draining) {
    link->drained += bytes.size();
    if (link->drained > kMaxDrainedBytes) {
      CloseLink(id, std::string(c->close_reason().message()), now);
    }
    return;
  }
  if (link->security != nullptr) {
    ReceiveSecured(id, *link, *c, bytes, now);
  } else {
    if (options_.observer != nullptr) {
      options_.observer->OnInput(id, bytes, now);
    }
    c->Receive(bytes, now);
  }
  if (link->reading && !c->WantsRead()) {
    link->reading = false;
    ++stats_.reads_paused;
    link->io->SetReading(id, false);
  }
}

void BrokerDriver::OnPeerClosed(ConnectionId id) {
  Link* link = Find(id);
  if (link == nullptr) return;
  link->peer_closed = true;
  Enqueue(id, *link);
}

void BrokerDriver::OnError(ConnectionId id, absl::Status error) {
  Link* link = Find(id);
  if (link == nullptr) return;
  if (link->error.ok()) {
    link->error = error.ok() ? absl::UnknownError("link failed") : error;
  }
  Enqueue(id, *link);
}

void BrokerDriver::OnWritable(ConnectionId id) {
  Link* link = Find(id);
  if (link == nullptr || link->writable) return;
  link->writable = true;
  Enqueue(id, *link);
}

void BrokerDriver::OnWriteDone(ConnectionId id,
                               absl::StatusOr<size_t> written) {
  Link* link = Find(id);
  if (link == nullptr) {
    orphaned_writes_.erase(id);  // the kernel is done with those bytes
    return;
  }
  if (!link->write_in_flight) return;
  link->write_in_flight = false;
  const size_t remaining = link->submitted_size() - link->submitted_sent;
  if (!written.ok()) {
    link->error = written.status();
  } else if (*written == 0 || *written > remaining) {
    // A stream write that makes no progress would be retried forever.
    link->error = absl::InternalError(absl::StrCat(
        "write completed with ", *written, " of ", remaining, " bytes"));
  } else {
    if (*written < remaining) ++stats_.partial_writes;
    stats_.bytes_written += *written;
    link->submitted_sent += *written;
  }
  Enqueue(id, *link);
}

// ---------------------------------------------------------------------------
// Turns

void BrokerDriver::Regrant(
    absl::FunctionRef<
        std::shared_ptr<const PermissionSet>(absl::string_view user)>
        permissions_of) {
  broker_.Regrant(permissions_of, Now());
}

absl::Status BrokerDriver::OpenStreams(
    StreamStorage* storage, std::vector<RecoveredStream> held,
    const std::vector<wire::StreamConfig>& declared) {
  const absl::Time now = Now();
  broker_.SetWallTime(options_.wall_clock());
  if (absl::Status s = broker_.OpenStreams(storage, std::move(held), now);
      !s.ok()) {
    return s;
  }
  for (const wire::StreamConfig& config : declared) {
    absl::StatusOr<wire::StreamInfo> info = broker_.AddStream(config, now);
    if (!info.ok()) {
      return absl::Status(info.status().code(),
                          absl::StrCat("stream '", config.name(),
                                       "': ", info.status().message()));
    }
  }
  return absl::OkStatus();
}

std::optional<absl::Time> BrokerDriver::RunTurn() {
  if (options_.before_turn) options_.before_turn(*this);
  const absl::Time now = Now();
  if (turn_hook_ != nullptr) turn_hook_->BeforeTurn(now);
  broker_.SetWallTime(options_.wall_clock());
  if (options_.observer != nullptr) options_.observer->OnTurn(now);
  broker_.Process(now);
  broker_.Tick(now);
  CloseOverdue(now);
  // Servicing a link can change others (closing a server answers its
  // requesters with SERVER_GONE), and an event handler may admit a
  // connection whose queued input then needs processing: repeat until quiet.
  while (true) {
    broker_.Process(now);
    DrainEvents();
    broker_.TakeChanged(changed_);
    for (ConnectionId id : pending_) {
      if (Link* link = Find(id)) {
        link->queued = false;
        changed_.push_back(id);
      }
    }
    pending_.clear();
    if (changed_.empty()) break;
    for (ConnectionId id : changed_) Service(id, now);
  }
  std::optional<absl::Time> next = NextWakeup();
  if (turn_hook_ != nullptr) {
    if (std::optional<absl::Time> hook = turn_hook_->AfterTurn(now)) {
      if (!next || *hook < *next) next = hook;
    }
  }
  return next;
}

void BrokerDriver::Shutdown(absl::Duration grace) {
  if (broker_.shutting_down()) return;
  options_.logger.Log(LogLevel::kInfo,
                      absl::StrCat("shutting down: saying goodbye to ",
                                   broker_.connection_count(), " connections"));
  const absl::Time now = Now();
  shutdown_grace_ = grace;
  shutdown_deadline_ = now + grace;
  if (options_.observer != nullptr) options_.observer->OnShutdown(now);
  broker_.Shutdown(now);
}

bool BrokerDriver::ShutdownDone(std::optional<absl::Time>& wakeup) {
  if (finished()) return true;
  if (Now() >= shutdown_deadline_) {
    options_.logger.Log(
        LogLevel::kWarning,
        absl::StrCat("shutdown took longer than ",
                     absl::FormatDuration(shutdown_grace_), ": closing ",
                     link_count(), " connections with output unwritten"));
    CloseAll("the broker shut down");
    return true;
  }
  if (shutdown_deadline_ != absl::InfiniteFuture() &&
      (!wakeup || *wakeup > shutdown_deadline_)) {
    wakeup = shutdown_deadline_;
  }
  return false;
}

void BrokerDriver::CloseAll(absl::string_view reason) {
  std::vector<ConnectionId> ids;
  ids.reserve(links_.size());
  for (const auto& [id, link] : links_) ids.push_back(id);
  std::sort(ids.begin(), ids.end());
  const absl::Time now = Now();
  for (ConnectionId id : ids) CloseLink(id, reason, now);
  DrainEvents();
}

// ---------------------------------------------------------------------------
// One link

BrokerDriver::Link* BrokerDriver::Find(ConnectionId id) {
  auto it = links_.find(id);
  return it == links_.end() ? nullptr : &it->second;
}

void BrokerDriver::Enqueue(ConnectionId id, Link& link) {
  if (link.queued) return;
  link.queued = true;
  pending_.push_back(id);
}

void BrokerDriver::Service(ConnectionId id, absl::Time now) {
  Link* link = Find(id);
  if (link == nullptr) return;
  Connection* c = broker_.FindConnection(id);
  if (c == nullptr) {
    // Only the driver closes connections, so this is a link whose
    // connection vanished some other way: let it go.
    CloseLink(id, "connection no longer exists", now);
    return;
  }
  if (link->error.ok() && !link->peer_closed && !link->draining) {
    UpdateReading(id, *link, *c);
  }
  if (link->error.ok()) Flush(id, *link, *c, now);
  if (!link->error.ok()) {
    // A failed TLS layer may hold an alert saying why: offer it once (a
    // kSubmitted write of it outlives the link, see CloseLink).
    if (link->security != nullptr) WriteCiphertext(id, *link);
    ++stats_.link_errors;
    const std::string reason(link->error.message());
    CloseLink(id, reason, now);
    return;
  }
  if (link->peer_closed) {
    ++stats_.peer_closes;
    CloseLink(id, "peer closed the connection", now);
    return;
  }
  if (link->security != nullptr && !link->security->handshake_done() &&
      !c->close_reason().ok()) {
    // The connection is closing, and nothing can reach the peer before its
    // handshake is done (a Goodbye at shutdown, say): close now rather than
    // hold the link for the linger.
    const std::string reason(c->close_reason().message());
    CloseLink(id, reason, now);
    return;
  }
  if (!c->ShouldClose()) return;
  if (link->security != nullptr && !link->security_shut_down) {
    // Tell the peer the stream ends here (close_notify), then write it.
    link->security_shut_down = true;
    link->security->Shutdown();
    Flush(id, *link, *c, now);
    if (!link->error.ok()) {
      const std::string reason(link->error.message());
      CloseLink(id, reason, now);
      return;
    }
  }
  if (!link->write_in_flight &&
      link->submitted_sent == link->submitted_size() &&
      (link->security == nullptr ||
       link->security->PendingCiphertext().empty())) {
    if (link->draining) return;  // until the peer closes, or the deadline
    if (link->security == nullptr &&
        WireCode(c->close_reason()) == wire::PAYLOAD_TOO_LARGE) {
      // The peer may still be sending the body it was refused: read and
      // drop it briefly, so that it reads the refusal rather than a reset.
      link->draining = true;
      if (!link->reading) {
        link->reading = true;
        link->io->SetReading(id, true);
      }
      const absl::Time deadline =
          now + std::min(kDrainTime, absl::Milliseconds(
                                         broker_.options().close_linger_ms()));
      if (link->close_deadline) {
        close_deadlines_.erase({*link->close_deadline, id});
      }
      link->close_deadline = deadline;
      close_deadlines_.emplace(deadline, id);
      return;
    }
    const std::string reason(c->close_reason().message());
    CloseLink(id, reason, now);
    return;
  }
  if (!link->close_deadline) {
    // A kSubmitted write the peer never drains: give it the same linger the
    // Broker gives unwritten output, then close anyway.
    link->close_deadline =
        now + absl::Milliseconds(broker_.options().close_linger_ms());
    close_deadlines_.emplace(*link->close_deadline, id);
  }
}

void BrokerDriver::UpdateReading(ConnectionId id, Link& link,
                                 const Connection& c) {
  const bool wants = c.WantsRead();
  if (wants == link.reading) return;
  link.reading = wants;
  if (!wants) ++stats_.reads_paused;
  link.io->SetReading(id, wants);
}

void BrokerDriver::Flush(ConnectionId id, Link& link, Connection& c,
                         absl::Time now) {
  if (link.security != nullptr && !link.clear_output) {
    FlushSecured(id, link, c, now);
  } else if (link.submitted) {
    FlushSubmitted(id, link, c, now);
  } else {
    FlushImmediate(id, link, c, now);
  }
}

void BrokerDriver::FlushImmediate(ConnectionId id, Link& link, Connection& c,
                                  absl::Time now) {
  std::array<absl::string_view, kMaxWriteChunks> chunks;
  // Write until the link takes nothing: edge-triggered loops only hear
  // about writability again after a write was refused.
  while (link.writable && c.PendingOutputBytes() > 0) {
    const absl::Span<const absl::string_view> offered(
        chunks.data(), c.PendingOutput(absl::MakeSpan(chunks)));
    const size_t offered_bytes = TotalSize(offered);
    ++stats_.writes;
    absl::StatusOr<size_t> written = link.io->WriteSome(id, offered);
    if (!written.ok()) {
      link.error = written.status();
      return;
    }
    if (*written == 0) {
      link.writable = false;
      ++stats_.writes_blocked;
      return;
    }
    if (*written > offered_bytes) {
      link.error = absl::InternalError(absl::StrCat(
          "link wrote ", *written, " bytes of ", offered_bytes, " offered"));
      return;
    }
    if (*written < offered_bytes) ++stats_.partial_writes;
    if (options_.observer != nullptr) {
      options_.observer->OnOutput(id, offered, *written, now);
    }
    stats_.bytes_written += *written;
    c.Consume(*written);
  }
}

void BrokerDriver::FlushSubmitted(ConnectionId id, Link& link, Connection& c,
                                  absl::Time now) {
  if (link.write_in_flight) return;
  if (link.submitted_sent == link.submitted_size()) {
    // The views into the connection's output do not outlive the next Broker
    // call, and a submitted write outlives many: copy into the link's own
    // buffer.
    if (link.submitted_bytes == nullptr) {
      link.submitted_bytes = std::make_unique<std::string>();
    }
    std::string& buffer = *link.submitted_bytes;
    buffer.clear();
    link.submitted_sent = 0;
    std::array<absl::string_view, kMaxWriteChunks> chunks;
    while (c.PendingOutputBytes() > 0 &&
           buffer.size() < options_.max_submitted_bytes) {
      const absl::Span<const absl::string_view> offered(
          chunks.data(), c.PendingOutput(absl::MakeSpan(chunks)));
      size_t taken = 0;
      for (absl::string_view chunk : offered) {
        const size_t room = options_.max_submitted_bytes - buffer.size();
        const absl::string_view piece = chunk.substr(0, room);
        buffer.append(piece.data(), piece.size());
        taken += piece.size();
        if (piece.size() < chunk.size()) break;
      }
      if (options_.observer != nullptr) {
        options_.observer->OnOutput(id, offered, taken, now);
      }
      c.Consume(taken);
    }
  }
  if (link.submitted_sent == link.submitted_size()) return;
  link.write_in_flight = true;
  ++stats_.writes;
  link.io->StartWrite(
      id, absl::string_view(*link.submitted_bytes).substr(link.submitted_sent));
}

// ---------------------------------------------------------------------------
// Secured links

const PeerIdentity* BrokerDriver::peer_identity(ConnectionId id) const {
  auto it = links_.find(id);
  if (it == links_.end() || it->second.security == nullptr) return nullptr;
  return it->second.security->peer_identity();
}

void BrokerDriver::ReceiveSecured(ConnectionId id, Link& link, Connection& c,
                                  absl::string_view bytes, absl::Time now) {
  // The peer has begun the handshake: nothing more goes out in clear.
  link.clear_output = false;
  plaintext_.clear();
  if (absl::Status s = link.security->Feed(bytes, &plaintext_); !s.ok()) {
    link.error = std::move(s);
    FailSecured(id, link, c);
    Enqueue(id, link);
    return;
  }
  if (link.handshake_deadline && link.security->handshake_done()) {
    ++stats_.tls_handshakes;
    ReportTlsStatistics();
    EndHandshakeDeadline(id, link);
  }
  // Handshake messages to answer, or the plaintext of whole records.
  if (!link.security->PendingCiphertext().empty()) Enqueue(id, link);
  if (link.security->peer_closed()) {
    link.peer_closed = true;
    Enqueue(id, link);
  }
  // Whole records may carry a little more than one read: hand them over in
  // pieces the connection takes (it allows a frame's worth past its limit).
  for (size_t at = 0; at < plaintext_.size(); at += kMaxReceiveBytes) {
    const absl::string_view piece =
        absl::string_view(plaintext_).substr(at, kMaxReceiveBytes);
    if (options_.observer != nullptr) {
      options_.observer->OnInput(id, piece, now);
    }
    c.Receive(piece, now);
  }
}

void BrokerDriver::ReportTlsStatistics() {
  tls_reported_ = true;
  TlsStatistics tls;
  tls.handshakes = stats_.tls_handshakes;
  tls.failures = {{"handshake_failure", stats_.tls_handshake_failures},
                  {"handshake_timeout", stats_.tls_handshake_timeouts},
                  {"plain_text", stats_.tls_plain_text},
                  {"protocol_error", stats_.tls_protocol_errors}};
  broker_.ReportTlsStatistics(std::move(tls));
}

void BrokerDriver::FailSecured(ConnectionId id, Link& link,
                               const Connection& c) {
  switch (link.security->failure_kind()) {
    case LinkSecurityFailure::kPlainText:
      ++stats_.tls_plain_text;
      break;
    case LinkSecurityFailure::kHandshake:
      ++stats_.tls_handshake_failures;
      break;
    case LinkSecurityFailure::kProtocol:
    default:
      ++stats_.tls_protocol_errors;
      break;
  }
  ReportTlsStatistics();
  EndHandshakeDeadline(id, link);
  options_.logger.Log(
      LogLevel::kWarning,
      absl::StrCat("TLS from ", c.peer().address, ": ", link.error.message()));
}

void BrokerDriver::EndHandshakeDeadline(ConnectionId id, Link& link) {
  if (!link.handshake_deadline) return;
  handshake_deadlines_.erase({*link.handshake_deadline, id});
  link.handshake_deadline.reset();
}

void BrokerDriver::FlushSecured(ConnectionId id, Link& link, Connection& c,
                                absl::Time now) {
  // Encrypt what the connection has, write the ciphertext, and repeat while
  // the link takes everything and there is more.
  while (link.error.ok()) {
    const size_t before = c.PendingOutputBytes();
    const bool had_ciphertext = !link.security->PendingCiphertext().empty();
    EncryptOutput(id, link, c, now);
    if (!link.error.ok()) return;
    if (!WriteCiphertext(id, link)) return;
    // Stop when everything went, when the link holds ciphertext back, or
    // when the layer took nothing although it held no ciphertext (its
    // handshake is not done): going round again would not change anything.
    // A layer full of ciphertext takes nothing either, until that is
    // written: then it has room, and no event would come to say so.
    if (c.PendingOutputBytes() == 0 ||
        !link.security->PendingCiphertext().empty() ||
        (c.PendingOutputBytes() == before && !had_ciphertext)) {
      return;
    }
  }
}

void BrokerDriver::EncryptOutput(ConnectionId id, Link& link, Connection& c,
                                 absl::Time now) {
  std::array<absl::string_view, kMaxWriteChunks> chunks;
  while (c.PendingOutputBytes() > 0) {
    const absl::Span<const absl::string_view> offered(
        chunks.data(), c.PendingOutput(absl::MakeSpan(chunks)));
    size_t taken = 0;
    for (absl::string_view chunk : offered) {
      const size_t n = link.security->Write(chunk);
      taken += n;
      if (n < chunk.size()) break;
    }
    if (taken == 0) return;  // handshake not done, or enough ciphertext
    if (options_.observer != nullptr) {
      options_.observer->OnOutput(id, offered, taken, now);
    }
    c.Consume(taken);
    if (taken < TotalSize(offered)) return;
  }
}

// Writes the layer's ciphertext. Returns whether the link took all of it
// (kImmediate) or a write could be started (kSubmitted).
bool BrokerDriver::WriteCiphertext(ConnectionId id, Link& link) {
  if (link.submitted) {
    if (link.write_in_flight) return false;
    if (link.submitted_sent == link.submitted_size()) {
      if (link.submitted_bytes == nullptr) {
        link.submitted_bytes = std::make_unique<std::string>();
      }
      const absl::string_view pending = link.security->PendingCiphertext();
      const size_t n = std::min(pending.size(), options_.max_submitted_bytes);
      link.submitted_bytes->assign(pending.data(), n);
      link.submitted_sent = 0;
      link.security->ConsumeCiphertext(n);
    }
    if (link.submitted_sent == link.submitted_size()) return true;
    link.write_in_flight = true;
    ++stats_.writes;
    link.io->StartWrite(
        id,
        absl::string_view(*link.submitted_bytes).substr(link.submitted_sent));
    return true;
  }
  while (link.writable && !link.security->PendingCiphertext().empty()) {
    const absl::string_view pending = link.security->PendingCiphertext();
    ++stats_.writes;
    absl::StatusOr<size_t> written =
        link.io->WriteSome(id, absl::MakeConstSpan(&pending, 1));
    if (!written.ok()) {
      if (link.error.ok()) link.error = written.status();
      return false;
    }
    if (*written == 0) {
      link.writable = false;
      ++stats_.writes_blocked;
      return false;
    }
    if (*written > pending.size()) {
      link.error = absl::InternalError(absl::StrCat(
          "link wrote ", *written, " bytes of ", pending.size(), " offered"));
      return false;
    }
    if (*written < pending.size()) ++stats_.partial_writes;
    stats_.bytes_written += *written;
    link.security->ConsumeCiphertext(*written);
  }
  return link.security->PendingCiphertext().empty();
}

void BrokerDriver::CloseLink(ConnectionId id, absl::string_view reason,
                             absl::Time now) {
  auto it = links_.find(id);
  if (it == links_.end()) return;
  LinkIo* io = it->second.io;
  if (it->second.close_deadline) {
    close_deadlines_.erase({*it->second.close_deadline, id});
  }
  if (it->second.handshake_deadline) {
    handshake_deadlines_.erase({*it->second.handshake_deadline, id});
  }
  if (it->second.write_in_flight) {
    // A completion-based loop may still be reading these bytes; they must
    // outlive the link until it reports the write done.
    orphaned_writes_[id] = std::move(it->second.submitted_bytes);
  }
  links_.erase(it);
  ++stats_.links_closed;
  if (options_.observer != nullptr) options_.observer->OnClose(id, reason, now);
  if (options_.logger.enabled(LogLevel::kDebug)) {
    options_.logger.Log(LogLevel::kDebug,
                        absl::StrCat("closing ", id.ToString(), ": ", reason));
  }
  io->Close(id);
  broker_.Close(id, reason, now);
}

void BrokerDriver::CloseOverdue(absl::Time now) {
  while (!close_deadlines_.empty() && close_deadlines_.begin()->first <= now) {
    const ConnectionId id = close_deadlines_.begin()->second;
    close_deadlines_.erase(close_deadlines_.begin());
    if (Link* link = Find(id)) {
      link->close_deadline.reset();
      const Connection* c = broker_.FindConnection(id);
      CloseLink(id,
                link->draining && c != nullptr
                    ? std::string(c->close_reason().message())
                    : std::string("last output not written in time"),
                now);
    }
  }
  while (!handshake_deadlines_.empty() &&
         handshake_deadlines_.begin()->first <= now) {
    const ConnectionId id = handshake_deadlines_.begin()->second;
    handshake_deadlines_.erase(handshake_deadlines_.begin());
    Link* link = Find(id);
    if (link == nullptr) continue;
    link->handshake_deadline.reset();
    ++stats_.tls_handshake_timeouts;
    ReportTlsStatistics();
    const Connection* c = broker_.FindConnection(id);
    const std::string reason =
        absl::StrCat("TLS handshake not done within ",
                     absl::FormatDuration(options_.tls_handshake_timeout));
    options_.logger.Log(
        LogLevel::kWarning,
        absl::StrCat("TLS from ", c != nullptr ? c->peer().address : "?", ": ",
                     reason));
    CloseLink(id, reason, now);
  }
}

std::optional<absl::Time> BrokerDriver::NextWakeup() const {
  std::optional<absl::Time> next = broker_.NextDeadline();
  if (!close_deadlines_.empty()) {
    const absl::Time close = close_deadlines_.begin()->first;
    if (!next || close < *next) next = close;
  }
  if (!handshake_deadlines_.empty()) {
    const absl::Time handshake = handshake_deadlines_.begin()->first;
    if (!next || handshake < *next) next = handshake;
  }
  return next;
}

// ---------------------------------------------------------------------------
// Events

void BrokerDriver::DrainEvents() {
  while (std::optional<wire::BrokerEvent> event = broker_.PollEvent()) {
    LogEvent(*event);
    if (options_.on_event) options_.on_event(*event);
  }
}

void BrokerDriver::LogEvent(const wire::BrokerEvent& event) const {
  const Logger& log = options_.logger;
  switch (event.kind_case()) {
    case wire::BrokerEvent::kConnectionAdded: {
      if (!log.enabled(LogLevel::kInfo)) return;
      const wire::ConnectionAdded& e = event.connection_added();
      log.Log(LogLevel::kInfo,
              absl::StrCat(ConnectionId(e.session_id()).ToString(),
                           Quoted(e.client_name()), " connected from ",
                           e.peer(), " (", e.protocol(), ")"));
      return;
    }
    case wire::BrokerEvent::kConnectionRemoved: {
      if (!log.enabled(LogLevel::kInfo)) return;
      const wire::ConnectionRemoved& e = event.connection_removed();
      log.Log(LogLevel::kInfo,
              absl::StrCat(
                  ConnectionId(e.session_id()).ToString(),
                  Quoted(e.client_name()), " disconnected: ",
                  // The code adds nothing when the peer just left.
                  e.code() == wire::OK || e.code() == wire::CONNECTION_CLOSED
                      ? ""
                      : absl::StrCat(wire::Code_Name(e.code()), ": "),
                  e.reason()));
      return;
    }
    case wire::BrokerEvent::kStorageFailed:
      log.Log(LogLevel::kWarning,
              absl::StrCat("the durable streams' storage failed (",
                           event.storage_failed().message(),
                           "): publishes to stored topics get "
                           "STORAGE_UNAVAILABLE until it recovers"));
      return;
    case wire::BrokerEvent::kStorageRecovered:
      log.Log(LogLevel::kInfo, "the durable streams' storage recovered");
      return;
    case wire::BrokerEvent::kClusterNodeJoined:
      log.Log(
          LogLevel::kInfo,
          absl::StrCat("cluster: node",
                       Quoted(event.cluster_node_joined().node()), " joined"));
      return;
    case wire::BrokerEvent::kClusterNodeLeft:
      log.Log(LogLevel::kInfo,
              absl::StrCat("cluster: node",
                           Quoted(event.cluster_node_left().node()), " left (",
                           event.cluster_node_left().reason(), ")"));
      return;
    case wire::BrokerEvent::kClusterRedisLost:
    case wire::BrokerEvent::kClusterRedisBack:
      return;  // the Redis link says so itself (transports/cluster)
    case wire::BrokerEvent::kConnectionPending: {
      if (!log.enabled(LogLevel::kInfo)) return;
      const wire::ConnectionPending& e = event.connection_pending();
      log.Log(LogLevel::kInfo,
              absl::StrCat(ConnectionId(e.session_id()).ToString(),
                           Quoted(e.client_name()), " from ", e.peer(),
                           " awaits admission"));
      return;
    }
    default:
      break;
  }
  if (!log.enabled(LogLevel::kDebug)) return;
  switch (event.kind_case()) {
    case wire::BrokerEvent::kSubscriptionAdded: {
      const wire::SubscriptionAdded& e = event.subscription_added();
      log.Log(
          LogLevel::kDebug,
          absl::StrCat(ConnectionId(e.session_id()).ToString(),
                       " subscribed to '", e.pattern(), "'",
                       e.queue_group().empty()
                           ? ""
                           : absl::StrCat(" in group '", e.queue_group(), "'"),
                       " as ", SubscriptionId(e.subscription_id()).ToString()));
      return;
    }
    case wire::BrokerEvent::kSubscriptionRemoved: {
      const wire::SubscriptionRemoved& e = event.subscription_removed();
      log.Log(
          LogLevel::kDebug,
          absl::StrCat(ConnectionId(e.session_id()).ToString(),
                       " unsubscribed from '", e.pattern(), "' (",
                       SubscriptionId(e.subscription_id()).ToString(), ")"));
      return;
    }
    case wire::BrokerEvent::kServiceAdded: {
      const wire::ServiceAdded& e = event.service_added();
      log.Log(LogLevel::kDebug,
              absl::StrCat(ConnectionId(e.session_id()).ToString(), " serves '",
                           e.topic(), "'"));
      return;
    }
    case wire::BrokerEvent::kServiceRemoved: {
      const wire::ServiceRemoved& e = event.service_removed();
      log.Log(LogLevel::kDebug,
              absl::StrCat(ConnectionId(e.session_id()).ToString(),
                           " no longer serves '", e.topic(), "'"));
      return;
    }
    case wire::BrokerEvent::kStatistics: {
      const wire::Statistics& s = event.statistics();
      log.Log(
          LogLevel::kDebug,
          absl::StrCat("statistics: ", s.connections(), " connections, ",
                       s.subscriptions(), " subscriptions, ", s.messages_in(),
                       " messages in, ", s.messages_out(), " out"));
      return;
    }
    default:
      return;
  }
}

}  // namespace manifold
