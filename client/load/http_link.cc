#include "client/load/http_link.h"

#include <errno.h>
#include <poll.h>
#include <sys/socket.h>

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "transports/sockets/socket_io.h"

namespace manifold::load {
namespace {

constexpr size_t kReadBuffer = 256 * 1024;
constexpr absl::Duration kReconnectTimeout = absl::Seconds(5);

}  // namespace

absl::StatusOr<std::unique_ptr<HttpLink>> HttpLink::Open(
    const Endpoint& endpoint, std::string name, absl::Duration timeout) {
  absl::StatusOr<UniqueFd> fd = ConnectStream(endpoint, timeout);
  if (!fd.ok()) {
    return absl::Status(fd.status().code(),
                        absl::StrCat(name, ": ", fd.status().message()));
  }
  if (absl::Status s = SetNonBlocking(fd->get()); !s.ok()) return s;
  return std::unique_ptr<HttpLink>(
      new HttpLink(*std::move(fd), endpoint, std::move(name)));
}

HttpLink::HttpLink(UniqueFd fd, const Endpoint& endpoint, std::string name)
    : fd_(std::move(fd)),
      endpoint_(endpoint),
      name_(std::move(name)),
      host_(endpoint.ToString()),
      buffer_(new char[kReadBuffer]) {}

absl::Status HttpLink::Post(absl::string_view path, absl::string_view cookie,
                            absl::string_view body) {
  if (reopen_) {
    // The descriptor number may change; callers watching it re-add it.
    absl::StatusOr<UniqueFd> fd = ConnectStream(endpoint_, kReconnectTimeout);
    if (!fd.ok()) {
      return absl::Status(fd.status().code(),
                          absl::StrCat(name_, ": ", fd.status().message()));
    }
    if (absl::Status s = SetNonBlocking(fd->get()); !s.ok()) return s;
    fd_ = *std::move(fd);
    reopen_ = false;
  }
  if (sent_ == output_.size()) {
    output_.clear();
    sent_ = 0;
  }
  absl::StrAppend(&output_, "POST ", path, " HTTP/1.1\r\nHost: ", host_,
                  "\r\nContent-Type: application/json\r\nContent-Length: ",
                  body.size(), "\r\n");
  if (!cookie.empty()) absl::StrAppend(&output_, "Cookie: ", cookie, "\r\n");
  output_.append("\r\n");
  output_.append(body.data(), body.size());
  busy_ = true;
  return reader_.Next();
}

absl::Status HttpLink::Flush() {
  while (sent_ < output_.size()) {
    const absl::string_view rest = absl::string_view(output_).substr(sent_);
    absl::StatusOr<size_t> n = WriteSome(fd_.get(), absl::MakeSpan(&rest, 1));
    if (!n.ok()) {
      return absl::Status(n.status().code(),
                          absl::StrCat(name_, ": ", n.status().message()));
    }
    if (*n == 0) break;  // the socket takes nothing now
    sent_ += *n;
  }
  return absl::OkStatus();
}

absl::StatusOr<bool> HttpLink::Read() {
  while (!reader_.complete()) {
    const ReadResult r = ReadSome(fd_.get(), {buffer_.get(), kReadBuffer});
    if (r.kind == ReadResult::kWouldBlock) return false;
    if (r.kind == ReadResult::kError) {
      return absl::Status(r.error.code(),
                          absl::StrCat(name_, ": ", r.error.message()));
    }
    absl::Status fed =
        r.kind == ReadResult::kEnd
            ? reader_.End()
            : reader_.Feed(absl::string_view(buffer_.get(), r.bytes));
    if (!fed.ok()) {
      return absl::Status(fed.code(), absl::StrCat(name_, ": ", fed.message()));
    }
    if (r.kind == ReadResult::kEnd && !reader_.complete()) {
      return absl::UnavailableError(
          absl::StrCat(name_, ": the server closed the connection"));
    }
    if (r.kind == ReadResult::kEnd) reopen_ = true;
  }
  if (!reader_.keep_alive()) reopen_ = true;
  busy_ = false;
  return true;
}

absl::Status HttpLink::Wait(short events, absl::Time deadline) {
  pollfd p{fd_.get(), events, 0};
  while (true) {
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) {
      return absl::DeadlineExceededError(
          absl::StrCat(name_, ": no answer from the server in time"));
    }
    const int n =
        ::poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(left)) + 1);
    if (n > 0) return absl::OkStatus();
    if (n < 0 && errno != EINTR) {
      return ErrnoStatus(errno, absl::StrCat(name_, ": poll"));
    }
  }
}

absl::Status HttpLink::Exchange(absl::Time deadline) {
  while (true) {
    if (absl::Status s = Flush(); !s.ok()) return s;
    if (!pending_output()) break;
    if (absl::Status s = Wait(POLLOUT, deadline); !s.ok()) return s;
  }
  while (true) {
    absl::StatusOr<bool> whole = Read();
    if (!whole.ok()) return whole.status();
    if (*whole) return absl::OkStatus();
    if (absl::Status s = Wait(POLLIN, deadline); !s.ok()) return s;
  }
}

}  // namespace manifold::load
