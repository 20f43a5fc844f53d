// File: core/config/config_fields.h
// -----------------------------------------------------------------------------
//
// The settings of a configuration message, as a flat list, and how one is set
// from text. A configuration message (annotated with config_options.proto) is
// a tree: manifoldd's ServerConfig holds a BrokerOptions. Flags and help see
// it flat: every scalar field is one setting named by its field name, and
// singular message fields are walked into, so `--max_connections` sets
// `broker.max_connections`. config_flags.h and config_file.h build on this.
//
// Example:
//
//   std::vector<ConfigField> fields =
//   ListConfigFields(*config.GetDescriptor()); for (const ConfigField& f :
//   fields) std::cout << f.name << "\n"; absl::Status s = SetFromText(config,
//   fields[0], "30s");

#ifndef MANIFOLD_CORE_CONFIG_CONFIG_FIELDS_H_
#define MANIFOLD_CORE_CONFIG_CONFIG_FIELDS_H_

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"

namespace manifold::config {

// One setting: a scalar field and the singular message fields leading to it.
struct ConfigField {
  // The message fields walked through, outermost first, then the scalar
  // field itself (always last).
  std::vector<const google::protobuf::FieldDescriptor*> path;
  // The flag's name: the scalar field's name, without "_ms" for a duration
  // (the field keepalive_interval_ms is the flag --keepalive_interval).
  std::string name;

  const google::protobuf::FieldDescriptor& field() const {
    return *path.back();
  }
  // A uint64 field whose name ends in "_ms": a duration in milliseconds.
  bool is_duration_ms() const;
  // The field's (manifold.config.help) line; empty when it has none.
  std::string help() const;
  // How --help shows the value: the field's (value_name), else "N",
  // "DURATION", "TEXT", "true|false", or the enum's values ("a|b").
  std::string value_name() const;
  // Set for settings derived flags and files leave to embedders.
  bool embedder_only() const;
};

// Lists every scalar, non-repeated field of `descriptor`, walking into
// singular message fields, in declaration order. Repeated fields and
// fields inside repeated messages are left out (configuration files set
// them). REQUIRES: no two listed fields share a name.
std::vector<ConfigField> ListConfigFields(
    const google::protobuf::Descriptor& descriptor);

// Sets `field` in `config` from `text` as a person writes it: numbers in
// decimal; booleans as true/false/yes/no/1/0; enum values by name in any
// case; for "_ms" fields a whole number of milliseconds or a duration such
// as "1.5s", "250ms", "2m". Checks the field's (min) and (max). Returns
// INVALID_ARGUMENT saying what was expected; `config` is unchanged then.
// REQUIRES: `field` was listed for config's descriptor.
absl::Status SetFromText(google::protobuf::Message& config,
                         const ConfigField& field, absl::string_view text);

// The field's value in `config` (its default when unset), written as
// SetFromText reads it; "_ms" fields as durations ("30s").
std::string ValueAsText(const google::protobuf::Message& config,
                        const ConfigField& field);

// Sets every unset, non-repeated scalar field of `config` to its default,
// walking into singular message fields, so that text format prints every
// setting and a later change of a default does not change what `config`
// means.
void SetDefaultsExplicitly(google::protobuf::Message& config);

// A set field that breaks its annotations, and where it is.
struct ConfigViolation {
  // The fields from `config` down to the one at fault, each with its index
  // in a repeated field (-1 for a singular one).
  std::vector<std::pair<const google::protobuf::FieldDescriptor*, int>> path;
  // E.g. "max_connections must be at least 1".
  std::string message;
};

// Returns the first set field of `config` (nested messages included) that is
// a number below its (min) or above its (max), or, when
// `refuse_embedder_only`, a setting marked embedder_only; nullopt when there
// is none.
std::optional<ConfigViolation> FindViolation(
    const google::protobuf::Message& config, bool refuse_embedder_only);

// FindViolation(config, false) as a status: INVALID_ARGUMENT
// "broker.max_connections must be at least 1", or OK.
absl::Status CheckMinimums(const google::protobuf::Message& config);

}  // namespace manifold::config

#endif  // MANIFOLD_CORE_CONFIG_CONFIG_FIELDS_H_
