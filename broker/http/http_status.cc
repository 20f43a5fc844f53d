#include "broker/http/http_status.h"

namespace manifold {

int StatusForError(wire::Code code) {
  switch (code) {
    case wire::INVALID_TOPIC:
    case wire::INVALID_PATTERN:
    case wire::INVALID_ARGUMENT:
    case wire::MALFORMED_MESSAGE:
      return 400;
    case wire::REFUSED:
      return 401;  // admission refused the credentials
    case wire::RESERVED_TOPIC:
      return 403;
    case wire::PAYLOAD_TOO_LARGE:
    case wire::FRAME_TOO_LARGE:
    case wire::INPUT_OVERFLOW:
      return 413;
    case wire::TOO_MANY_PENDING_REQUESTS:
    case wire::TOO_MANY_SUBSCRIPTIONS:
      return 429;
    case wire::HANDSHAKE_TIMEOUT:
    case wire::KEEPALIVE_TIMEOUT:
      return 408;
    case wire::SHUTTING_DOWN:
    case wire::TOO_MANY_CONNECTIONS:
    case wire::SLOW_CONSUMER:
    case wire::STORAGE_UNAVAILABLE:
    case wire::CLUSTER_UNAVAILABLE:
      return 503;
    case wire::UNKNOWN_STREAM:
      return 404;
    default:
      return 500;
  }
}

int StatusForRequest(wire::RequestStatus status) {
  switch (status) {
    case wire::REQUEST_OK:
      return 200;
    case wire::NO_SERVER:
      return 503;
    case wire::TIMED_OUT:
      return 504;
    case wire::SERVER_GONE:
      return 502;
    case wire::REJECTED:
      return 422;
    default:
      return 500;
  }
}

}  // namespace manifold
