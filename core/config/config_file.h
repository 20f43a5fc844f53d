// File: core/config/config_file.h
// -----------------------------------------------------------------------------
//
// Configuration files for a configuration message (config_options.proto):
// reading one, in protobuf text format or JSON (protobuf's own JSON mapping),
// with errors that name the file, the line and the field; and printing the
// effective configuration, every setting with its help line, in text format
// that reads back. The caller reads the file; this code does no I/O.
//
// Example (manifoldd.textpb):
//
//   # Where native clients connect.
//   listen: "0.0.0.0:24387"
//   broker {
//     max_connections: 1000
//     slow_consumer_policy: DROP
//   }
//
//   ServerConfig config;
//   absl::Status s = ParseConfigFile(text, "manifoldd.textpb", config);
//   // s: "manifoldd.textpb:4:5: max_connections must be at least 1"
//   std::cout << PrintConfig(config);

#ifndef MANIFOLD_CORE_CONFIG_CONFIG_FILE_H_
#define MANIFOLD_CORE_CONFIG_CONFIG_FILE_H_

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/message.h"

namespace manifold::config {

// Parses `text` into `config`: JSON when its first non-blank character is
// '{', else protobuf text format (where '#' starts a comment). Fields the
// file sets replace those in `config`; the rest stay. Then checks every set
// number against its (min) and refuses settings marked embedder_only.
// Returns INVALID_ARGUMENT "FILE:LINE:COLUMN: what" naming the field at
// fault (an unknown field, a value of the wrong type, a number below its
// minimum, a syntax error); `config` may be partly set then.
absl::Status ParseConfigFile(absl::string_view text, absl::string_view filename,
                             google::protobuf::Message& config);

// Returns `config` in text format with every field written out, unset ones
// at their defaults, each after its help line as a comment, and "_ms" fields
// followed by the duration they mean. ParseConfigFile reads it back to an
// equal configuration.
std::string PrintConfig(const google::protobuf::Message& config);

}  // namespace manifold::config

#endif  // MANIFOLD_CORE_CONFIG_CONFIG_FILE_H_
