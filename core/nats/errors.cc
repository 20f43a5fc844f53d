#include "core/nats/errors.h"

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "absl/types/optional.h"
#include "core/status.h"

namespace manifold::nats {
namespace {

// The payload key under which a status carries its NATS -ERR text.
constexpr absl::string_view kNatsTextPayloadUrl = "manifold/nats-err";

}  // namespace

std::string PublishPermissionsViolation(absl::string_view subject) {
  return absl::StrCat("Permissions Violation for Publish to \"", subject, "\"");
}

std::string SubscribePermissionsViolation(absl::string_view subject,
                                          absl::string_view queue_group) {
  if (queue_group.empty()) {
    return absl::StrCat("Permissions Violation for Subscription to \"", subject,
                        "\"");
  }
  return absl::StrCat("Permissions Violation for Subscription to \"", subject,
                      "\" using queue \"", queue_group, "\"");
}

absl::Status NatsError(wire::Code code, absl::string_view nats_text,
                       absl::string_view detail) {
  absl::Status status = ProtocolError(code, detail);
  status.SetPayload(kNatsTextPayloadUrl, absl::Cord(nats_text));
  return status;
}

std::string NatsErrorText(const absl::Status& status) {
  absl::optional<absl::Cord> text = status.GetPayload(kNatsTextPayloadUrl);
  return text.has_value() ? std::string(*text) : std::string();
}

absl::string_view FatalErrorText(wire::Code code) {
  switch (code) {
    case wire::HANDSHAKE_REQUIRED:
    case wire::REFUSED:
      return kAuthorizationViolation;
    case wire::HANDSHAKE_TIMEOUT:
      return kAuthenticationTimeout;
    case wire::KEEPALIVE_TIMEOUT:
      return kStaleConnection;
    case wire::SLOW_CONSUMER:
      return kSlowConsumer;
    case wire::TOO_MANY_CONNECTIONS:
      return kMaximumConnectionsExceeded;
    case wire::PAYLOAD_TOO_LARGE:
      return kMaximumPayloadViolation;
    case wire::FRAME_TOO_LARGE:
      return kMaximumControlLineExceeded;
    case wire::MALFORMED_MESSAGE:
      return kUnknownProtocolOperation;
    default:
      return "";
  }
}

std::string SanitizeErrorText(absl::string_view text, size_t max_bytes) {
  std::string out(text.substr(0, max_bytes));
  for (char& c : out) {
    if (c == '\'') {
      c = '"';
    } else if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      c = ' ';
    }
  }
  return out;
}

}  // namespace manifold::nats
