// File: client/load/load_wire.h
// -----------------------------------------------------------------------------
//
// What the load tool says to a server and what it hears back, for each
// protocol it speaks: Manifold's native protocol (delimited protobuf frames,
// core/manifold.proto) and the NATS client protocol. The tool writes raw bytes
// to non-blocking sockets itself, so this layer only encodes commands onto
// strings and decodes server messages from a buffer, without copying.
//
// Subjects are written in NATS form everywhere in the tool ("bench.a.data",
// "bench.*.data", "bench.>"); Subject() gives the protocol's own spelling
// ("bench/a/data", "bench/*/data", "bench/**" for the native protocol).
//
// Publishes are the hot path: PublishTemplate() encodes a whole publish once
// with a blank payload, and the publisher copies the template and writes each
// message's payload in place.
//
// Example:
//
//   std::unique_ptr<LoadWire> wire = LoadWire::For(Protocol::kNats);
//   std::string out;
//   wire->AppendConnect("bench-pub-0", out);
//   wire->AppendPing(1, out);
//   ...
//   ServerEvent event;
//   absl::StatusOr<size_t> used = wire->Parse(input, event);
//   if (used.ok() && *used > 0 && event.kind == ServerEvent::Kind::kMessage)
//     Check(event.payload);

#ifndef MANIFOLD_CLIENT_LOAD_LOAD_WIRE_H_
#define MANIFOLD_CLIENT_LOAD_LOAD_WIRE_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace manifold::load {

enum class Protocol { kNative, kNats };

// "native" or "nats".
absl::string_view ProtocolName(Protocol protocol);
// Parses "native" or "nats"; INVALID_ARGUMENT for anything else.
absl::StatusOr<Protocol> ParseProtocol(absl::string_view name);

// One message from the server. Views point into the parsed input and are
// valid until it changes.
struct ServerEvent {
  enum class Kind {
    kMessage,   // a delivery: subject, reply_to (may be empty), payload
    kRequest,   // native: a request to a topic this client serves; id is the
                // request id, payload its payload
    kResponse,  // native: the answer to a Request; id is its op id, ok tells
                // whether the status was REQUEST_OK, payload
    kPong,      // the answer to a ping; id is its op id (0 for NATS)
    kPing,      // the server checks the client is alive: answer AppendPong()
    kAck,       // native: an operation succeeded; id is its op id
    kError,     // text says what; fatal when the server closes after it
    kOther,     // nothing the tool acts on (INFO, Welcome, +OK)
  };
  Kind kind = Kind::kOther;
  uint64_t id = 0;
  // native kMessage from a replaying subscription: the message's sequence
  // in its stream (Deliver.stream_seq); 0 otherwise.
  uint64_t stream_seq = 0;
  bool ok = true;
  bool fatal = false;
  absl::string_view subject;
  absl::string_view reply_to;
  absl::string_view payload;
  std::string text;
};

// A publish encoded once, payload left blank.
struct MessageTemplate {
  std::string bytes;
  // Where the payload starts in `bytes`.
  size_t payload_offset = 0;
  size_t payload_size = 0;
};

class LoadWire {
 public:
  // Returns the encoder/decoder for `protocol`. Stateless: one may be shared
  // by any number of connections.
  static std::unique_ptr<LoadWire> For(Protocol protocol);

  virtual ~LoadWire() = default;
  virtual Protocol protocol() const = 0;

  // `nats_subject` ("a.b", "a.*", "a.>") in this protocol's spelling.
  virtual std::string Subject(absl::string_view nats_subject) const = 0;

  // Opens a session as client `name` (native Hello, NATS CONNECT with
  // verbose and pedantic off).
  virtual void AppendConnect(absl::string_view name,
                             std::string& out) const = 0;
  // A ping the server answers with a pong carrying `op_id` (NATS: no id).
  virtual void AppendPing(uint64_t op_id, std::string& out) const = 0;
  // The answer to the server's ping `ping`.
  virtual void AppendPong(const ServerEvent& ping, std::string& out) const = 0;
  // Subscribes to `subject` (NATS form) in queue group `group` (empty: none).
  // `id` is the NATS sid or the native op id.
  virtual void AppendSubscribe(absl::string_view subject,
                               absl::string_view group, uint64_t id,
                               std::string& out) const = 0;
  // Publishes `payload` on `subject` (NATS form; this protocol's own spelling
  // when `raw_subject`), asking for answers on `reply_to` (may be empty).
  virtual void AppendPublish(absl::string_view subject,
                             absl::string_view reply_to,
                             absl::string_view payload, std::string& out,
                             bool raw_subject = false) const = 0;
  // A publish on `subject` with `reply_to` (both NATS form) and a blank
  // payload of `payload_size` bytes.
  virtual MessageTemplate PublishTemplate(absl::string_view subject,
                                          absl::string_view reply_to,
                                          size_t payload_size) const = 0;

  // A publish the server acknowledges once it is durable. NATS: a publish
  // with reply subject `reply_to` (NATS form), answered there with a
  // JetStream PubAck; `op_id` is not sent. Native: Publish with ack and
  // `op_id`, answered by Ack{op_id} or Error{op_id}; `reply_to` is not sent.
  virtual void AppendAckedPublish(absl::string_view subject,
                                  absl::string_view reply_to, uint64_t op_id,
                                  absl::string_view payload,
                                  std::string& out) const = 0;
  // Native: subscribes to `subject` (NATS form) replaying stream `stream`
  // (empty: the one the subject's topics belong to) from sequence
  // `from_seq`. Returns false for NATS, which has no such subscription.
  virtual bool AppendReplaySubscribe(absl::string_view subject,
                                     absl::string_view stream,
                                     uint64_t from_seq, uint64_t op_id,
                                     std::string& out) const {
    return false;
  }

  // Native services (Serve / Request / Respond). NATS does request/reply
  // with publishes and reply subjects instead; these return false there.
  virtual bool AppendServe(absl::string_view subject, uint64_t op_id,
                           std::string& out) const {
    return false;
  }
  virtual bool AppendRequest(absl::string_view subject, uint64_t op_id,
                             absl::string_view payload,
                             std::string& out) const {
    return false;
  }
  virtual bool AppendRespond(uint64_t request_id, absl::string_view payload,
                             std::string& out) const {
    return false;
  }

  // Decodes the server message at the front of `input` into `event`.
  // Returns the bytes it used (> 0), 0 when `input` holds only part of a
  // message, or an error when the bytes are not this protocol.
  virtual absl::StatusOr<size_t> Parse(absl::string_view input,
                                       ServerEvent& event) const = 0;
};

}  // namespace manifold::load

#endif  // MANIFOLD_CLIENT_LOAD_LOAD_WIRE_H_
