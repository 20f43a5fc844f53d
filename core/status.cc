#include "core/status.h"

#include "absl/strings/cord.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace manifold {
namespace {

// The payload key under which a status carries its wire::Code, as a decimal.
constexpr absl::string_view kCodePayloadUrl = "manifold/wire-code";

}  // namespace

absl::StatusCode AbslCodeFor(wire::Code code) {
  switch (code) {
    case wire::OK:
      return absl::StatusCode::kOk;
    case wire::BAD_LENGTH_PREFIX:
    case wire::FRAME_TOO_LARGE:
    case wire::MALFORMED_MESSAGE:
    case wire::INVALID_TOPIC:
    case wire::INVALID_PATTERN:
    case wire::PAYLOAD_TOO_LARGE:
    case wire::INVALID_ARGUMENT:
    case wire::TRUNCATED_FRAME:
      return absl::StatusCode::kInvalidArgument;
    case wire::UNSUPPORTED_VERSION:
      return absl::StatusCode::kUnimplemented;
    case wire::HANDSHAKE_REQUIRED:
      return absl::StatusCode::kFailedPrecondition;
    case wire::RESERVED_TOPIC:
    case wire::REFUSED:
    case wire::PERMISSION_DENIED:
      return absl::StatusCode::kPermissionDenied;
    case wire::TOO_MANY_SUBSCRIPTIONS:
    case wire::TOO_MANY_PENDING_REQUESTS:
    case wire::TOO_MANY_SERVICES:
    case wire::TOO_MANY_CONNECTIONS:
    case wire::SLOW_CONSUMER:
    case wire::INPUT_OVERFLOW:
      return absl::StatusCode::kResourceExhausted;
    case wire::UNKNOWN_SUBSCRIPTION:
    case wire::NOT_SERVING:
    case wire::UNKNOWN_REQUEST:
    case wire::UNKNOWN_STREAM:
      return absl::StatusCode::kNotFound;
    case wire::TOPIC_ALREADY_SERVED:
      return absl::StatusCode::kAlreadyExists;
    case wire::HANDSHAKE_TIMEOUT:
    case wire::KEEPALIVE_TIMEOUT:
      return absl::StatusCode::kDeadlineExceeded;
    case wire::SHUTTING_DOWN:
    case wire::CONNECTION_CLOSED:
    case wire::STORAGE_UNAVAILABLE:
      return absl::StatusCode::kUnavailable;
    default:
      return absl::StatusCode::kInternal;
  }
}

absl::Status ProtocolError(wire::Code code, absl::string_view message) {
  absl::Status status(AbslCodeFor(code), message);
  status.SetPayload(kCodePayloadUrl, absl::Cord(absl::StrCat(code)));
  return status;
}

wire::Code WireCode(const absl::Status& status) {
  if (status.ok()) return wire::OK;
  if (absl::optional<absl::Cord> payload = status.GetPayload(kCodePayloadUrl)) {
    int value = 0;
    if (absl::SimpleAtoi(std::string(*payload), &value) &&
        wire::Code_IsValid(value)) {
      return static_cast<wire::Code>(value);
    }
  }
  // A status that did not come from ProtocolError(): only an invalid argument
  // has an obvious protocol meaning.
  return status.code() == absl::StatusCode::kInvalidArgument
             ? wire::INVALID_ARGUMENT
             : wire::INTERNAL;
}

std::string CodeName(wire::Code code) {
  const std::string& name = wire::Code_Name(code);
  return name.empty() ? absl::StrCat("CODE_", static_cast<int>(code)) : name;
}

}  // namespace manifold
