#include "broker/connection.h"

#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "broker/broker.h"
#include "core/status.h"

namespace manifold {
namespace {

// Input a transport may push past a full inbound channel before the broker
// concludes it is ignoring WantsRead(): room for one more read of a typical
// transport buffer.
constexpr size_t kInboundSlack = 64 * 1024;
// A frame's length prefix takes at most this many bytes.
constexpr size_t kMaxPrefixBytes = 10;

}  // namespace

Connection::Connection(Broker& broker, ConnectionId id, PeerInfo peer,
                       std::unique_ptr<ProtocolCodec> codec, absl::Time now)
    : codec_(std::move(codec)),
      broker_(broker),
      id_(id),
      peer_(std::move(peer)),
      last_input_(now) {}

Connection::~Connection() = default;

void Connection::Receive(absl::string_view bytes, absl::Time now) {
  if (state_ == ConnectionState::kClosing || bytes.empty()) return;
  broker_.stats_.bytes_in += bytes.size();
  last_input_ = now;
  pings_outstanding_ = 0;
  const BrokerOptions& options = broker_.options();
  const size_t unread = inbound_.size() - inbound_read_;
  if (unread + bytes.size() >
      options.max_inbound_bytes + options.max_frame_bytes + kInboundSlack) {
    ++broker_.stats_.protocol_errors;
    broker_.BeginClose(
        *this,
        ProtocolError(wire::INPUT_OVERFLOW,
                      absl::StrCat("peer sent ", unread + bytes.size(),
                                   " unprocessed bytes; the inbound limit is ",
                                   options.max_inbound_bytes)),
        /*tell_peer=*/true);
    broker_.RunDeferred();
    return;
  }
  DropReadInput();
  inbound_.append(bytes.data(), bytes.size());
  if (!WantsRead()) read_paused_ = true;
  broker_.MarkReady(*this);
}

bool Connection::WantsRead() const {
  if (state_ == ConnectionState::kClosing) return false;
  const size_t unread = inbound_.size() - inbound_read_;
  const BrokerOptions& options = broker_.options();
  if (unread < options.max_inbound_bytes) return true;
  // One operation larger than the inbound limit must still arrive whole.
  return awaiting_rest_of_frame_ &&
         unread < options.max_frame_bytes + kMaxPrefixBytes;
}

void Connection::Consume(size_t n) {
  outbound_.Consume(n);
  output_consumed_ += n;
  broker_.stats_.bytes_out += n;
}

std::string Connection::Describe() const {
  return client_name_.empty()
             ? id_.ToString()
             : absl::StrCat(id_.ToString(), " ('", client_name_, "')");
}

std::string Connection::CopyPendingOutput() const {
  std::vector<absl::string_view> chunks(64);
  while (true) {
    const size_t n = outbound_.Peek(absl::MakeSpan(chunks));
    if (n < chunks.size()) {
      std::string all;
      all.reserve(outbound_.size());
      for (size_t k = 0; k < n; ++k)
        all.append(chunks[k].data(), chunks[k].size());
      return all;
    }
    chunks.resize(chunks.size() * 2);
  }
}

void Connection::DropReadInput() {
  // Compacting moves the unread bytes; do it only when the buffer is empty
  // (free) or when the read part dominates, so each byte moves at most once.
  if (inbound_read_ == inbound_.size()) {
    inbound_.clear();
    inbound_read_ = 0;
  } else if (inbound_read_ >= 64 * 1024 &&
             inbound_read_ * 2 >= inbound_.size()) {
    inbound_.erase(0, inbound_read_);
    inbound_read_ = 0;
  }
}

}  // namespace manifold
