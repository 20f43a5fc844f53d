// File: broker/transcript/field_path.h
// -----------------------------------------------------------------------------
//
// Reads and writes one scalar field of a protobuf message named by a dotted
// path ("ack.subscription_id", "deliver.topic"), for transcript variables.
// Every component but the last names a singular message field; the last names
// a scalar (integer, bool, enum, string or bytes) field. Values travel as
// strings: integers in decimal, enums by name.
//
// Example:
//
//   wire::ServerMessage m;  // ack { subscription_id: 7 }
//   absl::StatusOr<std::string> v = GetField(m, "ack.subscription_id");  // "7"
//   absl::Status s = SetField(other, "unsubscribe.subscription_id", *v);

#ifndef MANIFOLD_BROKER_TRANSCRIPT_FIELD_PATH_H_
#define MANIFOLD_BROKER_TRANSCRIPT_FIELD_PATH_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/message.h"

namespace manifold::transcript {

// Returns the value at `path` in `message` as a string, or an error naming the
// path component that does not exist or is not of a supported type.
absl::StatusOr<std::string> GetField(const google::protobuf::Message& message,
                                     absl::string_view path);

// Sets the value at `path` in `message` (creating parent messages) from
// `value`, or returns an error if the path is bad or `value` does not convert.
absl::Status SetField(google::protobuf::Message& message,
                      absl::string_view path, absl::string_view value);

// Clears the field at `path` if its parents exist; a bad path is an error.
absl::Status ClearField(google::protobuf::Message& message,
                        absl::string_view path);

}  // namespace manifold::transcript

#endif  // MANIFOLD_BROKER_TRANSCRIPT_FIELD_PATH_H_
