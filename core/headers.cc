#include "core/headers.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/manifold.pb.h"
#include "core/status.h"

namespace manifold {

absl::Status ValidateHeader(absl::string_view key, absl::string_view value) {
  if (key.empty()) {
    return ProtocolError(wire::INVALID_ARGUMENT, "header key is empty");
  }
  if (key.size() > kMaxHeaderKeyBytes) {
    return ProtocolError(
        wire::INVALID_ARGUMENT,
        absl::StrCat("header key is ", key.size(), " bytes long; the limit is ",
                     kMaxHeaderKeyBytes));
  }
  for (unsigned char c : key) {
    if (c <= 0x20 || c >= 0x7f || c == ':') {
      return ProtocolError(
          wire::INVALID_ARGUMENT,
          absl::StrFormat("header key '%s' contains illegal character 0x%02x",
                          key.substr(0, 64), c));
    }
  }
  if (value.find_first_of("\r\n") != absl::string_view::npos) {
    return ProtocolError(
        wire::INVALID_ARGUMENT,
        absl::StrCat("value of header '", key, "' contains a line break"));
  }
  return absl::OkStatus();
}

}  // namespace manifold
