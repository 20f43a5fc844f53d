#include "client/load/link.h"

#include <errno.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "transports/sockets/socket_io.h"

namespace manifold::load {
namespace {

constexpr size_t kInitialBuffer = 256 * 1024;
// Room kept free for one read.
constexpr size_t kMinReadRoom = 64 * 1024;
// Native sync pings use op ids from here, far from any op id roles use.
constexpr uint64_t kSyncIdBase = uint64_t{1} << 62;

}  // namespace

absl::StatusOr<std::unique_ptr<Link>> Link::Open(
    const Endpoint& endpoint, const LoadWire& wire, std::string name,
    absl::Duration timeout, absl::string_view websocket_path,
    absl::string_view websocket_protocol) {
  absl::StatusOr<UniqueFd> fd = ConnectStream(endpoint, timeout);
  if (!fd.ok()) return fd.status();
  if (absl::Status s = SetNonBlocking(fd->get()); !s.ok()) return s;
  if (websocket_path.empty()) {
    return std::unique_ptr<Link>(
        new Link(*std::move(fd), wire, std::move(name)));
  }
#ifdef MANIFOLD_HAVE_WSLAY
  absl::StatusOr<std::string> early =
      WebSocketHandshake(fd->get(), endpoint.ToString(), websocket_path,
                         websocket_protocol, absl::Now() + timeout);
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

absl::Status Link::Flush() {
  if (ws_ != nullptr) {
    // Everything pending goes out as one WebSocket message.
    if (sent_ < output_.size()) {
      ws_->Wrap(absl::string_view(output_).substr(sent_), framed_);
      output_.clear();
      sent_ = 0;
    }
    return SendFramed();
  }
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
  while (true) {
    const ssize_t n = ::read(fd_.get(), buffer_.get() + end_, room);
    if (n > 0) {
      end_ += static_cast<size_t>(n);
      if (ws_ == nullptr) ready_ = end_;
      // A short read took everything the socket had.
      drained_ = static_cast<size_t>(n) < room;
      return static_cast<size_t>(n);
    }
    if (n == 0) {
      return absl::UnavailableError(
          absl::StrCat(name_, ": the server closed the connection"));
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      drained_ = true;
      return 0;
    }
    return ErrnoStatus(errno, absl::StrCat(name_, ": read"));
  }
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
