// File: broker/http/http_options.h
// -----------------------------------------------------------------------------
//
// How an HTTP listener behaves: its limits and timeouts. One value is
// usually shared by every connection of a listener (HttpCodec copies it).
//
// Example:
//
//   HttpOptions http;
//   http.max_pipelined_requests = 8;
//   listener.codec_factory = [http] {
//     return std::make_unique<HttpCodec>(http);
//   };

#ifndef MANIFOLD_BROKER_HTTP_HTTP_OPTIONS_H_
#define MANIFOLD_BROKER_HTTP_HTTP_OPTIONS_H_

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "absl/time/time.h"
#include "broker/nats/nats_codec.h"

namespace manifold {

// How the listener speaks Bayeux (CometD, Faye): broker/http/bayeux.h.
struct BayeuxOptions {
  // Where the listener speaks Bayeux; the message type may follow it
  // (/cometd/handshake, /cometd/connect, ...), as CometD clients append it.
  // Empty turns Bayeux off.
  std::string path = "/cometd";
  // Base paths for single message types ("handshake", "connect",
  // "subscribe", "unsubscribe", "publish", "disconnect"), for clients set
  // up to send each type to a URL of its own. The listener speaks Bayeux
  // at each of them as at `path` (the message type may follow too); any
  // batch is taken at any Bayeux path, as a CometD server takes it. Set
  // them with SetBayeuxTypePaths() (broker/http/bayeux.h), which checks
  // them.
  std::vector<std::pair<std::string, std::string>> type_paths;
  // advice.timeout: how long a /meta/connect is held when no message comes.
  // A client may ask for less, never for more.
  absl::Duration connect_timeout = absl::Seconds(30);
  // advice.interval: how long a client waits between connects.
  absl::Duration interval = absl::ZeroDuration();
  // How long a /service request waits for the service (TIMED_OUT after).
  absl::Duration service_timeout = absl::Seconds(10);
  // Messages one batch (a POST body, a WebSocket message) may hold; a
  // larger one is refused whole.
  size_t max_batch_messages = 100;
};

struct HttpOptions {
  // Request line and headers together: 431 past it (414 for the target).
  size_t max_header_bytes = 16 * 1024;
  // Header fields in one request: 431 past it.
  size_t max_headers = 64;
  // Request bodies and WebSocket messages are bounded by the broker's
  // max_payload_bytes (413) and max_frame_bytes (close 1009).

  // Requests a client may send ahead of their answers (pipelining). One
  // more gets 429 and the connection closes after the earlier answers.
  size_t max_pipelined_requests = 16;
  // A request's head and body must arrive within this time of its first
  // byte (slowloris): 408, then close. The first request of a connection is
  // also bounded by BrokerOptions::handshake_timeout.
  absl::Duration request_timeout = absl::Seconds(10);
  // A keep-alive connection with no request in flight closes after this.
  absl::Duration idle_timeout = absl::Seconds(60);
  // Topics one /sse request may name (400 past it).
  size_t max_sse_topics = 32;
  // A comment line on every Server-Sent Events stream this often, so
  // proxies and clients see the stream is alive.
  absl::Duration sse_heartbeat = absl::Seconds(15);
  // The reconnection delay advised to Server-Sent Events clients.
  absl::Duration sse_retry = absl::Seconds(2);
  // How often the codec looks at the time: the precision of the timeouts
  // and heartbeats above.
  absl::Duration tick = absl::Seconds(1);
  // Serve the dashboard at "/".
  bool dashboard = true;
  // How /nats presents itself (its INFO), as for a NATS TCP listener.
  NatsOptions nats;
  // Bayeux at bayeux.path.
  BayeuxOptions bayeux;
};

}  // namespace manifold

#endif  // MANIFOLD_BROKER_HTTP_HTTP_OPTIONS_H_
