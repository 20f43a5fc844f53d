#include "tests/transports/testing/wire_client.h"

#include <errno.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "core/status.h"
#include "gtest/gtest.h"
#include "transports/sockets/socket_io.h"

namespace manifold::testing {
namespace {

absl::Status AsStatus(const wire::Error& error) {
  return ProtocolError(error.code() == wire::OK ? wire::INTERNAL : error.code(),
                       error.message());
}

}  // namespace

absl::StatusOr<WireClient> WireClient::Connect(const Endpoint& endpoint,
                                               int receive_buffer_bytes) {
  if (receive_buffer_bytes <= 0) {
    absl::StatusOr<UniqueFd> fd = ConnectStream(endpoint);
    if (!fd.ok()) return fd.status();
    return WireClient(*std::move(fd));
  }
  // SO_RCVBUF must be set before connect() to shape the TCP window.
  absl::StatusOr<SocketAddress> address = Resolve(endpoint);
  if (!address.ok()) return address.status();
  UniqueFd fd(::socket(address->family, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return ErrnoStatus(errno, "socket");
  ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVBUF, &receive_buffer_bytes,
               sizeof(receive_buffer_bytes));
  if (::connect(fd.get(), address->get(), address->length) != 0) {
    return ErrnoStatus(errno, absl::StrCat("connect to ", endpoint.ToString()));
  }
  return WireClient(std::move(fd));
}

WireClient::WireClient(UniqueFd fd)
    : fd_(std::move(fd)),
      decoder_(std::make_unique<FrameDecoder>(
          FrameDecoder::Options{.max_frame_bytes = 64 << 20})) {}

absl::Status WireClient::Send(const wire::ClientMessage& message) {
  return SendRaw(EncodeFrame(message));
}

absl::Status WireClient::SendRaw(absl::string_view bytes) {
  return SendAll(fd_.get(), bytes);
}

absl::StatusOr<wire::ServerMessage> WireClient::Receive(
    absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  wire::ServerMessage message;
  char buffer[64 * 1024];
  while (true) {
    absl::StatusOr<bool> got = decoder_->Next(message);
    if (!got.ok()) return got.status();
    if (*got) return message;
    if (closed_)
      return absl::UnavailableError("the broker closed the connection");
    const int64_t wait_ms = absl::ToInt64Milliseconds(deadline - absl::Now());
    if (wait_ms <= 0) {
      return absl::DeadlineExceededError(
          absl::StrCat("no message within ", absl::FormatDuration(timeout)));
    }
    pollfd p{fd_.get(), POLLIN, 0};
    const int ready = ::poll(&p, 1, static_cast<int>(wait_ms));
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) continue;
    const ssize_t n = ::recv(fd_.get(), buffer, sizeof(buffer), 0);
    if (n > 0) {
      decoder_->Append(absl::string_view(buffer, static_cast<size_t>(n)));
    } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
      closed_ = true;  // end of stream, or a reset after the last bytes
    }
  }
}

absl::StatusOr<wire::ServerMessage> WireClient::ReceiveSkippingPings(
    absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (true) {
    absl::StatusOr<wire::ServerMessage> m =
        Receive(std::max(deadline - absl::Now(), absl::ZeroDuration()));
    if (!m.ok() || !m->has_ping()) return m;
  }
}

absl::StatusOr<std::vector<wire::ServerMessage>> WireClient::ReadUntilClosed(
    absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  std::vector<wire::ServerMessage> messages;
  while (true) {
    absl::StatusOr<wire::ServerMessage> m =
        Receive(std::max(deadline - absl::Now(), absl::ZeroDuration()));
    if (m.ok()) {
      messages.push_back(*std::move(m));
      continue;
    }
    if (absl::IsUnavailable(m.status())) return messages;
    return m.status();
  }
}

absl::StatusOr<wire::Welcome> WireClient::Hello(absl::string_view name) {
  wire::ClientMessage m;
  m.mutable_hello()->set_protocol_version(wire::PROTOCOL_VERSION_1);
  m.mutable_hello()->set_client_name(std::string(name));
  if (absl::Status sent = Send(m); !sent.ok()) return sent;
  absl::StatusOr<wire::ServerMessage> reply = Receive();
  if (!reply.ok()) return reply.status();
  if (reply->has_error()) return AsStatus(reply->error());
  if (!reply->has_welcome()) {
    return absl::InternalError(
        absl::StrCat("expected Welcome, got ", reply->ShortDebugString()));
  }
  return reply->welcome();
}

absl::StatusOr<uint64_t> WireClient::Subscribe(absl::string_view pattern) {
  wire::ClientMessage m;
  const uint64_t op = next_op_id();
  m.mutable_subscribe()->set_op_id(op);
  m.mutable_subscribe()->set_pattern(std::string(pattern));
  if (absl::Status sent = Send(m); !sent.ok()) return sent;
  absl::StatusOr<wire::ServerMessage> reply = ReceiveSkippingPings();
  if (!reply.ok()) return reply.status();
  if (reply->has_error()) return AsStatus(reply->error());
  if (!reply->has_ack() || reply->ack().op_id() != op) {
    return absl::InternalError(
        absl::StrCat("expected Ack, got ", reply->ShortDebugString()));
  }
  return reply->ack().subscription_id();
}

absl::Status WireClient::Publish(absl::string_view topic,
                                 absl::string_view payload) {
  wire::ClientMessage m;
  m.mutable_publish()->set_op_id(next_op_id());
  m.mutable_publish()->set_topic(std::string(topic));
  m.mutable_publish()->set_payload(std::string(payload));
  return Send(m);
}

absl::StatusOr<wire::ServerMessage> WireClient::PublishAcked(
    absl::string_view topic, absl::string_view payload) {
  wire::ClientMessage m;
  const uint64_t op = next_op_id();
  m.mutable_publish()->set_op_id(op);
  m.mutable_publish()->set_topic(std::string(topic));
  m.mutable_publish()->set_payload(std::string(payload));
  m.mutable_publish()->set_ack(true);
  if (absl::Status sent = Send(m); !sent.ok()) return sent;
  return ReceiveSkippingPings();
}

absl::Status WireClient::Ping() {
  wire::ClientMessage m;
  const uint64_t op = next_op_id();
  m.mutable_ping()->set_op_id(op);
  if (absl::Status sent = Send(m); !sent.ok()) return sent;
  absl::StatusOr<wire::ServerMessage> reply = ReceiveSkippingPings();
  if (!reply.ok()) return reply.status();
  if (!reply->has_pong() || reply->pong().op_id() != op) {
    return absl::InternalError(
        absl::StrCat("expected Pong, got ", reply->ShortDebugString()));
  }
  return absl::OkStatus();
}

void WireClient::ShutdownWrite() { ::shutdown(fd_.get(), SHUT_WR); }

void WireClient::Reset() {
  const linger abort{1, 0};
  ::setsockopt(fd_.get(), SOL_SOCKET, SO_LINGER, &abort, sizeof(abort));
  fd_.reset();
}

std::string PatternPayload(size_t size, uint32_t seed) {
  std::string payload(size, '\0');
  uint32_t x = seed * 2654435761u + 1;
  for (size_t i = 0; i < size; ++i) {
    x = x * 1664525u + 1013904223u;  // a fixed LCG: the same bytes every run
    payload[i] = static_cast<char>(x >> 24);
  }
  return payload;
}

WireClient GreetedClient(const Endpoint& endpoint, absl::string_view name,
                         int receive_buffer_bytes) {
  absl::StatusOr<WireClient> client =
      WireClient::Connect(endpoint, receive_buffer_bytes);
  EXPECT_TRUE(client.ok()) << client.status();
  absl::StatusOr<wire::Welcome> welcome = client->Hello(name);
  EXPECT_TRUE(welcome.ok()) << welcome.status();
  return *std::move(client);
}

}  // namespace manifold::testing
