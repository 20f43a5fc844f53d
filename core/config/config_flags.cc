#include "core/config/config_flags.h"

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace manifold::config {
namespace {

void AppendEntry(std::string& out, absl::string_view name,
                 absl::string_view value_name, absl::string_view help,
                 absl::string_view default_text) {
  absl::StrAppend(&out, "  --", name);
  if (!value_name.empty()) absl::StrAppend(&out, "=", value_name);
  if (!default_text.empty())
    absl::StrAppend(&out, "  (default: ", default_text, ")");
  absl::StrAppend(&out, "\n");
  if (!help.empty()) absl::StrAppend(&out, "      ", help, "\n");
}

}  // namespace

ConfigFlags::ConfigFlags(const google::protobuf::Descriptor& descriptor) {
  for (ConfigField& field : ListConfigFields(descriptor)) {
    if (field.embedder_only()) continue;
    field_index_.emplace(field.name, fields_.size());
    // A duration also answers to its field's own name.
    field_index_.emplace(field.field().name(), fields_.size());
    fields_.push_back(std::move(field));
  }
}

void ConfigFlags::AddProgramFlag(ProgramFlag flag) {
  program_flags_.push_back(std::move(flag));
}

absl::StatusOr<ConfigFlags::Parsed> ConfigFlags::Parse(
    absl::Span<const char* const> args) const {
  Parsed parsed;
  for (size_t i = 0; i < args.size(); ++i) {
    absl::string_view arg = args[i];
    if (!absl::ConsumePrefix(&arg, "--") && !absl::ConsumePrefix(&arg, "-")) {
      return absl::InvalidArgumentError(absl::StrCat(
          "unexpected argument '", args[i], "'; flags start with --"));
    }
    absl::string_view name = arg;
    std::optional<std::string> value;
    if (size_t eq = arg.find('='); eq != absl::string_view::npos) {
      name = arg.substr(0, eq);
      value = std::string(arg.substr(eq + 1));
    }
    const ProgramFlag* program = nullptr;
    for (const ProgramFlag& p : program_flags_) {
      if (p.name == name) program = &p;
    }
    const ConfigField* field = nullptr;
    size_t index = 0;
    bool negated = false;
    if (auto it = field_index_.find(name); it != field_index_.end()) {
      index = it->second;
      field = &fields_[index];
    } else if (absl::StartsWith(name, "no") && !value.has_value()) {
      // --noflag for a boolean setting.
      auto negated_it = field_index_.find(name.substr(2));
      if (negated_it != field_index_.end() &&
          fields_[negated_it->second].field().cpp_type() ==
              google::protobuf::FieldDescriptor::CPPTYPE_BOOL) {
        index = negated_it->second;
        field = &fields_[index];
        negated = true;
      }
    }
    if (program == nullptr && field == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown flag --", name, " (--help lists them)"));
    }
    const bool takes_value =
        program != nullptr
            ? !program->value_name.empty()
            : field->field().cpp_type() !=
                  google::protobuf::FieldDescriptor::CPPTYPE_BOOL;
    if (!value.has_value()) {
      if (negated) {
        value = "false";
      } else if (!takes_value) {
        value = program != nullptr ? "" : "true";
      } else if (i + 1 < args.size()) {
        value = args[++i];
      } else {
        return absl::InvalidArgumentError(
            absl::StrCat("--", name, " needs a value"));
      }
    } else if (program != nullptr && !takes_value) {
      return absl::InvalidArgumentError(
          absl::StrCat("--", name, " takes no value"));
    }
    if (program != nullptr) {
      parsed.program_flags[program->name] = *std::move(value);
    } else {
      parsed.settings.emplace_back(index, *std::move(value));
    }
  }
  return parsed;
}

absl::Status ConfigFlags::Apply(const Parsed& parsed,
                                google::protobuf::Message& config) const {
  for (const auto& [index, text] : parsed.settings) {
    absl::Status s = SetFromText(config, fields_[index], text);
    if (!s.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("--", s.message()));
    }
  }
  return absl::OkStatus();
}

std::string ConfigFlags::Help(const google::protobuf::Message& defaults) const {
  std::string out;
  for (const ProgramFlag& p : program_flags_) {
    AppendEntry(out, p.name, p.value_name, p.help, "");
  }
  for (const ConfigField& field : fields_) {
    std::string default_text = ValueAsText(defaults, field);
    if (field.field().cpp_type() ==
        google::protobuf::FieldDescriptor::CPPTYPE_STRING) {
      default_text = absl::StrCat("\"", default_text, "\"");
    }
    AppendEntry(out, field.name, field.value_name(), field.help(),
                default_text);
  }
  return out;
}

}  // namespace manifold::config
