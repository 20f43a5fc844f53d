#include "client/load/link.h"

#include <errno.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "client/load/tls_link.h"
#include "transports/sockets/socket_io.h"

namespace manifold::load {
namespace {

constexpr size_t kInitialBuffer = 256 * 1024;
// Room kept free for one read.
constexpr size_t kMinReadRoom = 64 * 1024;
// Native sync pings use op ids from here, far from any op id roles use.
constexpr uint64_t kSyncIdBase = uint64_t{1} << 62;
// The longest INFO line read before TLS starts.
constexpr size_t kMaxInfoLine = 64 * 1024;

// Reads what a NATS server sends first, in clear, until its INFO line is
// whole. Returns everything read (the INFO line first).
absl::StatusOr<std::string> ReadNatsInfo(int fd, absl::Time deadline) {
  std::string got;
  char chunk[4096];
  while (got.find("\r\n") == std::string::npos) {
    if (got.size() > kMaxInfoLine) {
      return absl::InvalidArgumentError(
          "the server's first line is too long for a NATS INFO");
    }
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) {
      return absl::DeadlineExceededError(
          "the server sent no NATS INFO in time (is it a NATS port?)");
    }
    pollfd p{fd, POLLIN, 0};
    const int ready = ::poll(&p, 1,
                             static_cast<int>(std::max<int64_t>(
                                 1, absl::ToInt64Milliseconds(left))));
    if (ready < 0 && errno != EINTR) return ErrnoStatus(errno, "poll");
    if (ready <= 0) continue;
    const ssize_t n = ::read(fd, chunk, sizeof(chunk));
    if (n == 0) {
      return absl::UnavailableError(
          "the server closed the connection before its NATS INFO");
    }
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) continue;
      return ErrnoStatus(errno, "read");
    }
    got.append(chunk, static_cast<size_t>(n));
  }
  if (!absl::StartsWith(got, "INFO")) {
    return absl::InvalidArgumentError(
        "the server's first line is not a NATS INFO (is it a NATS port?)");
  }
  return got;
}

// True when the INFO's JSON sets `key` to true (`"key":true`, with any
// blanks).
bool InfoSays(absl::string_view info, absl::string_view key) {
  const std::string quoted = absl::StrCat("\"", key, "\"");
  const size_t at = info.find(quoted);
  if (at == absl::string_view::npos) return false;
  absl::string_view rest =
      absl::StripLeadingAsciiWhitespace(info.substr(at + quoted.size()));
  if (!absl::ConsumePrefix(&rest, ":")) return false;
  return absl::StartsWith(absl::StripLeadingAsciiWhitespace(rest), "true");
}

}  // namespace

absl::StatusOr<std::unique_ptr<Link>> Link::Open(
    const Endpoint& endpoint, const LoadWire& wire, std::string name,
    absl::Duration timeout, absl::string_view websocket_path,
    absl::string_view websocket_protocol,
    std::shared_ptr<const TlsClientContext> tls) {
  const absl::Time deadline = absl::Now() + timeout;
  absl::StatusOr<UniqueFd> fd = ConnectStream(endpoint, timeout);
  if (!fd.ok()) return fd.status();
  if (absl::Status s = SetNonBlocking(fd->get()); !s.ok()) return s;
  if (tls != nullptr && !websocket_path.empty()) {
    return absl::InvalidArgumentError(
        "the load tool does not speak TLS inside WebSockets");
  }
  if (websocket_path.empty()) {
    // What arrived before TLS started (a plain NATS link's INFO), or with
    // the end of the handshake: input to parse.
    std::string early;
    if (wire.protocol() == Protocol::kNats) {
      absl::StatusOr<std::string> info = ReadNatsInfo(fd->get(), deadline);
      if (!info.ok()) return info.status();
      const absl::string_view line =
          absl::string_view(*info).substr(0, info->find("\r\n"));
      const bool required = InfoSays(line, "tls_required");
      if (required && tls == nullptr) {
        return absl::FailedPreconditionError(
            "the server requires TLS (its INFO says tls_required): add --tls");
      }
      if (tls != nullptr && !required && !InfoSays(line, "tls_available")) {
        return absl::FailedPreconditionError(
            "--tls, but the server does not offer TLS (its INFO has no "
            "tls_required): is this its TLS port?");
      }
      if (tls != nullptr && info->size() > line.size() + 2) {
        return absl::InvalidArgumentError(
            "the server sent more than its INFO before TLS started");
      }
      if (tls == nullptr) early = *std::move(info);
    }
    std::unique_ptr<TlsLink> session;
    if (tls != nullptr) {
      absl::StatusOr<std::unique_ptr<TlsLink>> handshake =
          TlsLink::Handshake(fd->get(), std::move(tls), deadline, &early);
      if (!handshake.ok()) return handshake.status();
      session = *std::move(handshake);
    }
    auto link =
        std::unique_ptr<Link>(new Link(*std::move(fd), wire, std::move(name)));
    link->tls_ = std::move(session);
    link->AppendInput(early);
    return link;
  }
#ifdef MANIFOLD_HAVE_WSLAY
  absl::StatusOr<std::string> early =
      WebSocketHandshake(fd->get(), endpoint.ToString(), websocket_path,
                         websocket_protocol, deadline);
  if (!early.ok()) {
    return absl::Status(early.status().code(),
                        absl::StrCat(name, ": ", early.status().message()));
  }
  auto link =
      std::unique_ptr<Link>(new Link(*std::move(fd), wire, std::move(name)));
  link->ws_ = std::make_unique<WebSocketClient>();
  link->AppendInput(*early);
  return link;
#else
  return absl::FailedPreconditionError(
      "this build of the load tool has no WebSocket support (libwslay-dev)");
#endif
}

Link::~Link() = default;

void Link::AppendInput(absl::string_view bytes) {
  if (bytes.empty()) return;
  if (start_ == end_) start_ = ready_ = end_ = 0;
  if (capacity_ - end_ < bytes.size()) {
    const size_t unread = end_ - start_;
    const size_t grown = std::max(capacity_ * 2, unread + bytes.size());
    std::unique_ptr<char[]> bigger(new char[grown]);
    std::memcpy(bigger.get(), buffer_.get() + start_, unread);
    buffer_ = std::move(bigger);
    capacity_ = grown;
    ready_ -= start_;
    start_ = 0;
    end_ = unread;
  }
  std::memcpy(buffer_.get() + end_, bytes.data(), bytes.size());
  end_ += bytes.size();
  if (ws_ == nullptr) ready_ = end_;
}

absl::Status Link::SendFramed() {
  while (framed_sent_ < framed_.size()) {
    const ssize_t n = ::send(fd_.get(), framed_.data() + framed_sent_,
                             framed_.size() - framed_sent_, MSG_NOSIGNAL);
    if (n > 0) {
      framed_sent_ += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    return ErrnoStatus(n < 0 ? errno : EPIPE, absl::StrCat(name_, ": send"));
  }
  if (framed_sent_ == framed_.size()) {
    framed_.clear();
    framed_sent_ = 0;
  } else if (framed_sent_ >= (1 << 20)) {
    framed_.erase(0, framed_sent_);
    framed_sent_ = 0;
  }
  return absl::OkStatus();
}

Link::Link(UniqueFd fd, const LoadWire& wire, std::string name)
    : fd_(std::move(fd)),
      wire_(wire),
      name_(std::move(name)),
      buffer_(new char[kInitialBuffer]),
      capacity_(kInitialBuffer) {}

size_t Link::PendingCiphertext() const {
  return tls_ != nullptr ? tls_->pending_ciphertext() : 0;
}

absl::Status Link::FlushTls() {
  // The whole batch at once: full-size records, one send per 256 KiB.
  absl::StatusOr<size_t> taken =
      tls_->Send(absl::string_view(output_).substr(sent_));
  if (!taken.ok()) {
    return absl::Status(taken.status().code(),
                        absl::StrCat(name_, ": ", taken.status().message()));
  }
  sent_ += *taken;
  return absl::OkStatus();
}

absl::Status Link::Flush() {
  if (tls_ != nullptr) {
    if (absl::Status s = FlushTls(); !s.ok()) return s;
  } else if (ws_ != nullptr) {
    // Everything pending goes out as one WebSocket message.
    if (sent_ < output_.size()) {
      ws_->Wrap(absl::string_view(output_).substr(sent_), framed_);
      output_.clear();
      sent_ = 0;
    }
    return SendFramed();
  } else {
    while (sent_ < output_.size()) {
      const ssize_t n = ::send(fd_.get(), output_.data() + sent_,
                               output_.size() - sent_, MSG_NOSIGNAL);
      if (n > 0) {
        sent_ += static_cast<size_t>(n);
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
      return ErrnoStatus(n < 0 ? errno : EPIPE, absl::StrCat(name_, ": send"));
    }
  }
  if (sent_ == output_.size()) {
    output_.clear();
    sent_ = 0;
  } else if (sent_ >= (1 << 20)) {
    output_.erase(0, sent_);
    sent_ = 0;
  }
  return absl::OkStatus();
}

absl::StatusOr<size_t> Link::Fill() {
  // WebSocket links read the same way: the framing comes out in Next().
  drained_ = false;
  if (start_ == end_) start_ = ready_ = end_ = 0;
  if (capacity_ - end_ < kMinReadRoom) {
    // Move the unread part to the front; grow when it fills the buffer
    // (one large message).
    const size_t unread = end_ - start_;
    if (capacity_ - unread < kMinReadRoom) {
      const size_t grown = std::max(capacity_ * 2, unread + kMinReadRoom);
      std::unique_ptr<char[]> bigger(new char[grown]);
      std::memcpy(bigger.get(), buffer_.get() + start_, unread);
      buffer_ = std::move(bigger);
      capacity_ = grown;
    } else {
      std::memmove(buffer_.get(), buffer_.get() + start_, unread);
    }
    ready_ -= start_;
    start_ = 0;
    end_ = unread;
  }
  const size_t room = capacity_ - end_;
  if (tls_ != nullptr) return FillTls(room);
  while (true) {
    const ssize_t n = ::read(fd_.get(), buffer_.get() + end_, room);
    if (n > 0) {
      heard_ = true;
      end_ += static_cast<size_t>(n);
      if (ws_ == nullptr) ready_ = end_;
      // A short read took everything the socket had.
      drained_ = static_cast<size_t>(n) < room;
      return static_cast<size_t>(n);
    }
    if (n == 0) {
      return absl::UnavailableError(absl::StrCat(
          name_, heard_ ? ": the server closed the connection"
                        : ": the server closed the connection without a "
                          "word (a TLS port? then add --tls)"));
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      drained_ = true;
      return 0;
    }
    return ErrnoStatus(errno, absl::StrCat(name_, ": read"));
  }
}

absl::StatusOr<size_t> Link::FillTls(size_t room) {
  // The plaintext can exceed what was read (the end of a record begun by
  // the previous read): AppendInput grows the buffer when it must.
  plain_.clear();
  absl::StatusOr<size_t> read = tls_->Receive(room, &plain_);
  if (!read.ok()) {
    return absl::Status(read.status().code(),
                        absl::StrCat(name_, ": ", read.status().message()));
  }
  AppendInput(plain_);
  drained_ = *read < room;
  return *read;
}

absl::StatusOr<bool> Link::Next(ServerEvent& event) {
  while (true) {
    if (start_ < ready_) {
      absl::StatusOr<size_t> used = wire_.Parse(
          absl::string_view(buffer_.get() + start_, ready_ - start_), event);
      if (!used.ok()) {
        return absl::Status(used.status().code(),
                            absl::StrCat(name_, ": ", used.status().message()));
      }
      if (*used > 0) {
        start_ += *used;
        return true;
      }
    }
    // The stream holds no whole message: on a WebSocket, more of it may be
    // behind the next frame header.
    if (ws_ == nullptr || ready_ == end_) return false;
    absl::StatusOr<size_t> more =
        ws_->Deframe(buffer_.get(), start_, ready_, end_, framed_);
    if (!more.ok()) {
      return absl::Status(more.status().code(),
                          absl::StrCat(name_, ": ", more.status().message()));
    }
    if (*more == 0) return false;
  }
}

absl::Status Link::Wait(short events, absl::Time deadline) {
  while (true) {
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) {
      return absl::DeadlineExceededError(
          absl::StrCat(name_, ": no answer from the server in time"));
    }
    pollfd p{fd_.get(), events, 0};
    const int ready = ::poll(&p, 1,
                             static_cast<int>(std::max<int64_t>(
                                 1, absl::ToInt64Milliseconds(left))));
    if (ready > 0) return absl::OkStatus();
    if (ready < 0 && errno != EINTR) {
      return ErrnoStatus(errno, absl::StrCat(name_, ": poll"));
    }
  }
}

absl::Status Link::Sync(
    absl::Time deadline,
    const std::function<absl::Status(const ServerEvent&)>& on_event) {
  const uint64_t id = kSyncIdBase + ++sync_ids_;
  wire_.AppendPing(id, output_);
  while (pending_output() > 0) {
    if (absl::Status s = Flush(); !s.ok()) return s;
    if (pending_output() > 0) {
      if (absl::Status s = Wait(POLLOUT, deadline); !s.ok()) return s;
    }
  }
  ServerEvent event;
  while (true) {
    absl::StatusOr<bool> got = Next(event);
    if (!got.ok()) return got.status();
    if (!*got) {
      if (absl::Status s = Wait(POLLIN, deadline); !s.ok()) return s;
      absl::StatusOr<size_t> read = Fill();
      if (!read.ok()) return read.status();
      continue;
    }
    switch (event.kind) {
      case ServerEvent::Kind::kPong:
        // NATS pongs carry no id; ours is the only ping in flight.
        if (wire_.protocol() == Protocol::kNats || event.id == id) {
          return absl::OkStatus();
        }
        break;
      case ServerEvent::Kind::kPing:
        wire_.AppendPong(event, output_);
        if (absl::Status s = Flush(); !s.ok()) return s;
        break;
      case ServerEvent::Kind::kError:
        if (event.fatal || !on_event) {
          return absl::FailedPreconditionError(
              absl::StrCat(name_, ": the server said ", event.text));
        }
        break;
      default:
        break;
    }
    if (on_event) {
      if (absl::Status s = on_event(event); !s.ok()) return s;
    }
  }
}

}  // namespace manifold::load
