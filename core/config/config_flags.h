// File: core/config/config_flags.h
// -----------------------------------------------------------------------------
//
// Command-line flags derived from a configuration message: every setting that
// config_fields.h lists is a flag of the same name, and --help is written
// from the fields' help lines and defaults. A program adds its own few flags
// that are not settings (--config FILE, --print_config). Nothing is
// registered globally; parsing returns values and errors.
//
// Flags are written --name=value or --name value; a boolean also as --name
// (true) or --noname (false). Later flags win over earlier ones. A duration
// field (a uint64 named X_ms) is the flag --X, taking "250ms", "1.5s", "2m"
// or whole milliseconds; --X_ms is accepted too.
//
// Example:
//
//   ConfigFlags flags(*ServerConfig::descriptor());
//   flags.AddProgramFlag({"config", "FILE", "Read settings from FILE."});
//   absl::StatusOr<ConfigFlags::Parsed> parsed = flags.Parse(args);
//   if (!parsed.ok()) Fail(parsed.status());    // "unknown flag --nope"
//   ServerConfig config;
//   if (auto file = parsed->program_flags.find("config"); ...) { ...read it }
//   absl::Status applied = flags.Apply(*parsed, config);   // flags win
//   std::cout << flags.Help(ServerConfig());

#ifndef MANIFOLD_CORE_CONFIG_CONFIG_FLAGS_H_
#define MANIFOLD_CORE_CONFIG_CONFIG_FLAGS_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "core/config/config_fields.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"

namespace manifold::config {

class ConfigFlags {
 public:
  // A flag of the program's own, not a setting.
  struct ProgramFlag {
    std::string name;
    // Empty for a flag that takes no value (--print_config).
    std::string value_name;
    std::string help;
  };

  // The command line, split but not yet applied.
  struct Parsed {
    // Settings in command-line order: an index into fields(), and the text.
    std::vector<std::pair<size_t, std::string>> settings;
    // Program flags given: name -> value ("" for those without a value).
    absl::flat_hash_map<std::string, std::string> program_flags;
  };

  // Derives the flags from `descriptor` (see ListConfigFields), leaving out
  // fields marked embedder_only. `descriptor` must outlive this object.
  explicit ConfigFlags(const google::protobuf::Descriptor& descriptor);

  // Adds a flag of the program's own. REQUIRES: no setting has its name.
  void AddProgramFlag(ProgramFlag flag);

  // Splits `args` (the arguments after the program's name) into settings and
  // program flags. Returns INVALID_ARGUMENT naming the argument at fault: an
  // unknown flag, a missing value, an argument that is not a flag.
  absl::StatusOr<Parsed> Parse(absl::Span<const char* const> args) const;

  // Applies the settings in `parsed` to `config`, in order. Returns
  // INVALID_ARGUMENT "--name: ..." for a value that does not parse or is
  // below the field's minimum; settings before it stay applied.
  // REQUIRES: config's descriptor is the one given to the constructor.
  absl::Status Apply(const Parsed& parsed,
                     google::protobuf::Message& config) const;

  // One entry per flag, program flags first, then the settings in
  // declaration order: "  --name=VALUE (default: D)\n      help\n". Defaults
  // are read from `defaults`.
  std::string Help(const google::protobuf::Message& defaults) const;

  const std::vector<ConfigField>& fields() const { return fields_; }

 private:
  std::vector<ConfigField> fields_;
  std::vector<ProgramFlag> program_flags_;
  absl::flat_hash_map<std::string, size_t> field_index_;
};

}  // namespace manifold::config

#endif  // MANIFOLD_CORE_CONFIG_CONFIG_FLAGS_H_
