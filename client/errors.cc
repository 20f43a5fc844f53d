#include "client/errors.h"

#include <string>

#include "absl/strings/cord.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "core/status.h"

namespace manifold {
namespace {

// The payload key under which a status carries its wire::RequestStatus.
constexpr absl::string_view kRequestStatusUrl = "manifold/request-status";

absl::StatusCode AbslCodeFor(wire::RequestStatus status) {
  switch (status) {
    case wire::REQUEST_OK:
      return absl::StatusCode::kOk;
    case wire::NO_SERVER:
      return absl::StatusCode::kUnavailable;
    case wire::TIMED_OUT:
      return absl::StatusCode::kDeadlineExceeded;
    case wire::SERVER_GONE:
      return absl::StatusCode::kAborted;
    case wire::REJECTED:
      return absl::StatusCode::kFailedPrecondition;
    default:
      return absl::StatusCode::kUnknown;
  }
}

std::string RequestStatusName(wire::RequestStatus status) {
  const std::string& name = wire::RequestStatus_Name(status);
  return name.empty()
             ? absl::StrCat("REQUEST_STATUS_", static_cast<int>(status))
             : name;
}

}  // namespace

absl::Status BrokerError(wire::Code code, absl::string_view message) {
  return ProtocolError(code, absl::StrCat(CodeName(code), ": ", message));
}

absl::Status RequestFailed(wire::RequestStatus status,
                           absl::string_view message) {
  absl::Status result(AbslCodeFor(status),
                      absl::StrCat(RequestStatusName(status), ": ", message));
  result.SetPayload(kRequestStatusUrl,
                    absl::Cord(absl::StrCat(static_cast<int>(status))));
  return result;
}

std::optional<wire::RequestStatus> RequestStatusOf(const absl::Status& status) {
  if (status.ok()) return wire::REQUEST_OK;
  absl::optional<absl::Cord> payload = status.GetPayload(kRequestStatusUrl);
  if (!payload.has_value()) return std::nullopt;
  int value = 0;
  if (!absl::SimpleAtoi(std::string(*payload), &value) ||
      !wire::RequestStatus_IsValid(value)) {
    return std::nullopt;
  }
  return static_cast<wire::RequestStatus>(value);
}

}  // namespace manifold
