// File: core/http/json_messages.h
// -----------------------------------------------------------------------------
//
// The native protocol's messages as JSON, for browsers without protobuf (the
// "manifold.json" WebSocket subprotocol and Server-Sent Events with
// format=json). The mapping is protobuf's own JSON mapping of
// core/manifold.proto, so the schema stays the single source, with one
// change for payloads: a `payload` is the message's text when it is UTF-8,
// and otherwise base64 with `"base64": true` beside it (a client sends
// base64 the same way).
//
//   {"hello":{"protocolVersion":1,"clientName":"page"}}
//   {"subscribe":{"opId":"1","pattern":"rooms/*"}}
//   {"publish":{"topic":"rooms/a","payload":"hi"}}
//   {"publish":{"topic":"rooms/a","payload":"/w==","base64":true}}
//   <- {"deliver":{"subscriptionId":"3","topic":"rooms/a","payload":"hi"}}
//
// Example:
//
//   absl::StatusOr<wire::ClientMessage> m = ClientMessageFromJson(text);
//   std::string json = ServerMessageToJson(server_message);

#ifndef MANIFOLD_CORE_HTTP_JSON_MESSAGES_H_
#define MANIFOLD_CORE_HTTP_JSON_MESSAGES_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/manifold.pb.h"
#include "google/protobuf/struct.pb.h"

namespace manifold::http {

// True when `bytes` are valid UTF-8.
bool IsUtf8(absl::string_view bytes);

// Parses one client message. Returns INVALID_ARGUMENT naming the problem
// (not JSON, an unknown field, a bad base64 payload).
absl::StatusOr<wire::ClientMessage> ClientMessageFromJson(
    absl::string_view json);

// Formats one server message (default values included, as protobuf's
// always_print_primitive_fields does, so a reader need not know them).
std::string ServerMessageToJson(const wire::ServerMessage& message);

// `value` as JSON with object keys sorted, so that equal values print
// equal bytes (protobuf's own printer follows its maps' random order).
std::string ValueToJson(const google::protobuf::Value& value);

// Formats any message the same way (events, statistics, connection lists),
// with payload fields mapped as above.
std::string MessageToJson(const google::protobuf::Message& message);

}  // namespace manifold::http

#endif  // MANIFOLD_CORE_HTTP_JSON_MESSAGES_H_
