// File: broker/internal/message_checks.h
// -----------------------------------------------------------------------------
//
// The checks a message gets before the broker takes it from anyone but a
// codec: a request or response from a connection (wire::Header) and the
// embedder's own publications and requests (HeaderView). One function, so
// both say the same thing about the same fault.
//
// Example:
//
//   if (absl::Status s = CheckSizeAndHeaders(request.payload(),
//                                            request.headers(), limit);
//       !s.ok()) {
//     return s;   // INVALID_ARGUMENT naming the header, or PAYLOAD_TOO_LARGE
//   }

#ifndef MANIFOLD_BROKER_INTERNAL_MESSAGE_CHECKS_H_
#define MANIFOLD_BROKER_INTERNAL_MESSAGE_CHECKS_H_

#include <cstddef>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "broker/protocol_codec.h"
#include "core/headers.h"
#include "core/manifold.pb.h"
#include "core/status.h"

namespace manifold::internal {

// Payload plus headers: what the payload limit applies to.
inline size_t MessageSize(const PublishOp& p) {
  size_t size = p.payload.size();
  for (const HeaderView& h : p.headers) size += h.key.size() + h.value.size();
  return size;
}

inline absl::string_view HeaderKey(const wire::Header& h) { return h.key(); }
inline absl::string_view HeaderValue(const wire::Header& h) {
  return h.value();
}
inline absl::string_view HeaderKey(const HeaderView& h) { return h.key; }
inline absl::string_view HeaderValue(const HeaderView& h) { return h.value; }

// Returns OK when every header is valid (ValidateHeader) and the payload and
// headers together fit in `limit` bytes; otherwise the first header's
// INVALID_ARGUMENT, or PAYLOAD_TOO_LARGE stating the size and the limit.
// `Headers` is any range of wire::Header or HeaderView.
template <typename Headers>
absl::Status CheckSizeAndHeaders(absl::string_view payload,
                                 const Headers& headers, size_t limit) {
  size_t size = payload.size();
  for (const auto& h : headers) {
    if (absl::Status s = ValidateHeader(HeaderKey(h), HeaderValue(h));
        !s.ok()) {
      return s;
    }
    size += HeaderKey(h).size() + HeaderValue(h).size();
  }
  if (size > limit) {
    return ProtocolError(
        wire::PAYLOAD_TOO_LARGE,
        absl::StrCat("payload of ", size,
                     " bytes (headers included) exceeds the limit of ", limit,
                     " bytes"));
  }
  return absl::OkStatus();
}

}  // namespace manifold::internal

#endif  // MANIFOLD_BROKER_INTERNAL_MESSAGE_CHECKS_H_
