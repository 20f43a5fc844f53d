#include "core/config/config_fields.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "core/config/config_options.pb.h"

namespace manifold::config {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::EnumValueDescriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

void Collect(const Descriptor& descriptor,
             std::vector<const FieldDescriptor*>& prefix,
             std::vector<ConfigField>& out) {
  for (int i = 0; i < descriptor.field_count(); ++i) {
    const FieldDescriptor* field = descriptor.field(i);
    if (field->is_repeated() || field->options().GetExtension(file_only)) {
      continue;
    }
    prefix.push_back(field);
    if (field->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
      Collect(*field->message_type(), prefix, out);
    } else {
      ConfigField setting{prefix, field->name()};
      // A duration's flag is named for what it is: --keepalive_interval=30s.
      if (setting.is_duration_ms()) {
        setting.name.resize(setting.name.size() - std::strlen("_ms"));
      }
      out.push_back(std::move(setting));
    }
    prefix.pop_back();
  }
}

// The message that holds `field`'s scalar; sets the messages on the way.
Message* Holder(Message& config, const ConfigField& field) {
  Message* m = &config;
  for (size_t i = 0; i + 1 < field.path.size(); ++i) {
    m = m->GetReflection()->MutableMessage(m, field.path[i]);
  }
  return m;
}

// The message that holds `field`'s scalar, or a default instance on the way.
const Message& ConstHolder(const Message& config, const ConfigField& field) {
  const Message* m = &config;
  for (size_t i = 0; i + 1 < field.path.size(); ++i) {
    m = &m->GetReflection()->GetMessage(*m, field.path[i]);
  }
  return *m;
}

absl::Status Expected(const ConfigField& field, absl::string_view what,
                      absl::string_view text) {
  return absl::InvalidArgumentError(
      absl::StrCat(field.name, ": expected ", what, ", got '", text, "'"));
}

absl::Status AtLeast(absl::string_view name, uint64_t least) {
  return absl::InvalidArgumentError(
      absl::StrCat(name, " must be at least ", least));
}

absl::StatusOr<uint64_t> ParseMilliseconds(const ConfigField& field,
                                           absl::string_view text) {
  uint64_t ms = 0;
  if (absl::SimpleAtoi(text, &ms)) return ms;
  absl::Duration d;
  if (!absl::ParseDuration(std::string(text), &d) || d < absl::ZeroDuration() ||
      d == absl::InfiniteDuration()) {
    return Expected(field, "a duration such as 250ms, 1.5s or 2m", text);
  }
  return static_cast<uint64_t>(absl::ToInt64Milliseconds(d));
}

uint64_t MinOf(const FieldDescriptor& field) {
  return field.options().GetExtension(min);
}

// The field's (max), or none.
std::optional<uint64_t> MaxOf(const FieldDescriptor& field) {
  if (!field.options().HasExtension(max)) return std::nullopt;
  return field.options().GetExtension(max);
}

absl::Status AtMost(absl::string_view name, uint64_t most) {
  return absl::InvalidArgumentError(
      absl::StrCat(name, " must be at most ", most));
}

}  // namespace

bool ConfigField::is_duration_ms() const {
  return field().type() == FieldDescriptor::TYPE_UINT64 &&
         absl::EndsWith(field().name(), "_ms");
}

std::string ConfigField::help() const {
  return field().options().GetExtension(config::help);
}

bool ConfigField::embedder_only() const {
  return field().options().GetExtension(config::embedder_only);
}

std::string ConfigField::value_name() const {
  const std::string& named = field().options().GetExtension(config::value_name);
  if (!named.empty()) return named;
  if (is_duration_ms()) return "DURATION";
  switch (field().cpp_type()) {
    case FieldDescriptor::CPPTYPE_STRING:
      return "TEXT";
    case FieldDescriptor::CPPTYPE_BOOL:
      return "true|false";
    case FieldDescriptor::CPPTYPE_ENUM: {
      std::vector<std::string> names;
      const auto* e = field().enum_type();
      for (int i = 0; i < e->value_count(); ++i) {
        names.push_back(absl::AsciiStrToLower(e->value(i)->name()));
      }
      return absl::StrJoin(names, "|");
    }
    default:
      return "N";
  }
}

std::vector<ConfigField> ListConfigFields(const Descriptor& descriptor) {
  std::vector<const FieldDescriptor*> prefix;
  std::vector<ConfigField> out;
  Collect(descriptor, prefix, out);
  return out;
}

void SetDefaultsExplicitly(Message& config) {
  const Reflection* r = config.GetReflection();
  const Descriptor* d = config.GetDescriptor();
  for (int i = 0; i < d->field_count(); ++i) {
    const FieldDescriptor* f = d->field(i);
    if (f->is_repeated() || f->containing_oneof() != nullptr) continue;
    if (f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
      SetDefaultsExplicitly(*r->MutableMessage(&config, f));
      continue;
    }
    if (r->HasField(config, f)) continue;
    switch (f->cpp_type()) {
      case FieldDescriptor::CPPTYPE_STRING:
        r->SetString(&config, f, f->default_value_string());
        break;
      case FieldDescriptor::CPPTYPE_BOOL:
        r->SetBool(&config, f, f->default_value_bool());
        break;
      case FieldDescriptor::CPPTYPE_ENUM:
        r->SetEnum(&config, f, f->default_value_enum());
        break;
      case FieldDescriptor::CPPTYPE_UINT64:
        r->SetUInt64(&config, f, f->default_value_uint64());
        break;
      case FieldDescriptor::CPPTYPE_UINT32:
        r->SetUInt32(&config, f, f->default_value_uint32());
        break;
      case FieldDescriptor::CPPTYPE_INT64:
        r->SetInt64(&config, f, f->default_value_int64());
        break;
      case FieldDescriptor::CPPTYPE_INT32:
        r->SetInt32(&config, f, f->default_value_int32());
        break;
      case FieldDescriptor::CPPTYPE_DOUBLE:
        r->SetDouble(&config, f, f->default_value_double());
        break;
      case FieldDescriptor::CPPTYPE_FLOAT:
        r->SetFloat(&config, f, f->default_value_float());
        break;
      case FieldDescriptor::CPPTYPE_MESSAGE:
        break;
    }
  }
}

absl::Status SetFromText(Message& config, const ConfigField& field,
                         absl::string_view text) {
  const FieldDescriptor& f = field.field();
  const std::string s(text);
  // Parse first, so that a bad value leaves `config` untouched.
  switch (f.cpp_type()) {
    case FieldDescriptor::CPPTYPE_STRING: {
      Message* m = Holder(config, field);
      m->GetReflection()->SetString(m, &f, s);
      return absl::OkStatus();
    }
    case FieldDescriptor::CPPTYPE_BOOL: {
      const std::string lower = absl::AsciiStrToLower(s);
      bool value;
      if (lower == "true" || lower == "yes" || lower == "1") {
        value = true;
      } else if (lower == "false" || lower == "no" || lower == "0") {
        value = false;
      } else {
        return Expected(field, "true or false", text);
      }
      Message* m = Holder(config, field);
      m->GetReflection()->SetBool(m, &f, value);
      return absl::OkStatus();
    }
    case FieldDescriptor::CPPTYPE_ENUM: {
      const auto* e = f.enum_type();
      for (int i = 0; i < e->value_count(); ++i) {
        if (absl::EqualsIgnoreCase(e->value(i)->name(), s)) {
          Message* m = Holder(config, field);
          m->GetReflection()->SetEnum(m, &f, e->value(i));
          return absl::OkStatus();
        }
      }
      return Expected(field, field.value_name(), text);
    }
    case FieldDescriptor::CPPTYPE_UINT64:
    case FieldDescriptor::CPPTYPE_UINT32: {
      uint64_t value = 0;
      if (field.is_duration_ms()) {
        absl::StatusOr<uint64_t> ms = ParseMilliseconds(field, text);
        if (!ms.ok()) return ms.status();
        value = *ms;
      } else if (!absl::SimpleAtoi(s, &value) ||
                 (f.cpp_type() == FieldDescriptor::CPPTYPE_UINT32 &&
                  value > UINT32_MAX)) {
        return Expected(field, "a whole number", text);
      }
      if (value < MinOf(f)) return AtLeast(field.name, MinOf(f));
      if (MaxOf(f) && value > *MaxOf(f)) return AtMost(field.name, *MaxOf(f));
      Message* m = Holder(config, field);
      if (f.cpp_type() == FieldDescriptor::CPPTYPE_UINT64) {
        m->GetReflection()->SetUInt64(m, &f, value);
      } else {
        m->GetReflection()->SetUInt32(m, &f, static_cast<uint32_t>(value));
      }
      return absl::OkStatus();
    }
    case FieldDescriptor::CPPTYPE_INT64:
    case FieldDescriptor::CPPTYPE_INT32: {
      int64_t value = 0;
      if (!absl::SimpleAtoi(s, &value) ||
          (f.cpp_type() == FieldDescriptor::CPPTYPE_INT32 &&
           (value > INT32_MAX || value < INT32_MIN))) {
        return Expected(field, "a whole number", text);
      }
      if (value < 0 ? MinOf(f) > 0 : static_cast<uint64_t>(value) < MinOf(f)) {
        return AtLeast(field.name, MinOf(f));
      }
      if (MaxOf(f) && value > 0 && static_cast<uint64_t>(value) > *MaxOf(f)) {
        return AtMost(field.name, *MaxOf(f));
      }
      Message* m = Holder(config, field);
      if (f.cpp_type() == FieldDescriptor::CPPTYPE_INT64) {
        m->GetReflection()->SetInt64(m, &f, value);
      } else {
        m->GetReflection()->SetInt32(m, &f, static_cast<int32_t>(value));
      }
      return absl::OkStatus();
    }
    case FieldDescriptor::CPPTYPE_DOUBLE:
    case FieldDescriptor::CPPTYPE_FLOAT: {
      double value = 0;
      if (!absl::SimpleAtod(s, &value))
        return Expected(field, "a number", text);
      Message* m = Holder(config, field);
      if (f.cpp_type() == FieldDescriptor::CPPTYPE_DOUBLE) {
        m->GetReflection()->SetDouble(m, &f, value);
      } else {
        m->GetReflection()->SetFloat(m, &f, static_cast<float>(value));
      }
      return absl::OkStatus();
    }
    case FieldDescriptor::CPPTYPE_MESSAGE:
      break;
  }
  return absl::InvalidArgumentError(
      absl::StrCat(field.name, " cannot be set from text"));
}

std::string ValueAsText(const Message& config, const ConfigField& field) {
  const Message& m = ConstHolder(config, field);
  const Reflection* r = m.GetReflection();
  const FieldDescriptor& f = field.field();
  switch (f.cpp_type()) {
    case FieldDescriptor::CPPTYPE_STRING:
      return r->GetString(m, &f);
    case FieldDescriptor::CPPTYPE_BOOL:
      return r->GetBool(m, &f) ? "true" : "false";
    case FieldDescriptor::CPPTYPE_ENUM:
      return absl::AsciiStrToLower(r->GetEnum(m, &f)->name());
    case FieldDescriptor::CPPTYPE_UINT64:
      if (field.is_duration_ms()) {
        return absl::FormatDuration(absl::Milliseconds(r->GetUInt64(m, &f)));
      }
      return absl::StrCat(r->GetUInt64(m, &f));
    case FieldDescriptor::CPPTYPE_UINT32:
      return absl::StrCat(r->GetUInt32(m, &f));
    case FieldDescriptor::CPPTYPE_INT64:
      return absl::StrCat(r->GetInt64(m, &f));
    case FieldDescriptor::CPPTYPE_INT32:
      return absl::StrCat(r->GetInt32(m, &f));
    case FieldDescriptor::CPPTYPE_DOUBLE:
      return absl::StrCat(r->GetDouble(m, &f));
    case FieldDescriptor::CPPTYPE_FLOAT:
      return absl::StrCat(r->GetFloat(m, &f));
    case FieldDescriptor::CPPTYPE_MESSAGE:
      break;
  }
  return "";
}

namespace {

// The value of an integer field, clamped to 0 when negative; nullopt for
// other kinds.
std::optional<uint64_t> Magnitude(const Message& m, const FieldDescriptor& f) {
  const Reflection* r = m.GetReflection();
  switch (f.cpp_type()) {
    case FieldDescriptor::CPPTYPE_UINT64:
      return r->GetUInt64(m, &f);
    case FieldDescriptor::CPPTYPE_UINT32:
      return r->GetUInt32(m, &f);
    case FieldDescriptor::CPPTYPE_INT64:
      return std::max<int64_t>(0, r->GetInt64(m, &f));
    case FieldDescriptor::CPPTYPE_INT32:
      return std::max<int32_t>(0, r->GetInt32(m, &f));
    default:
      return std::nullopt;
  }
}

bool AboveMaximum(const Message& m, const FieldDescriptor& f) {
  const std::optional<uint64_t> most = MaxOf(f);
  const std::optional<uint64_t> value = Magnitude(m, f);
  return most && value && *value > *most;
}

bool BelowMinimum(const Message& m, const FieldDescriptor& f) {
  const uint64_t least = MinOf(f);
  if (least == 0) return false;
  const Reflection* r = m.GetReflection();
  switch (f.cpp_type()) {
    case FieldDescriptor::CPPTYPE_UINT64:
      return r->GetUInt64(m, &f) < least;
    case FieldDescriptor::CPPTYPE_UINT32:
      return r->GetUInt32(m, &f) < least;
    case FieldDescriptor::CPPTYPE_INT64:
      return r->GetInt64(m, &f) < 0 ||
             static_cast<uint64_t>(r->GetInt64(m, &f)) < least;
    case FieldDescriptor::CPPTYPE_INT32:
      return r->GetInt32(m, &f) < 0 ||
             static_cast<uint64_t>(r->GetInt32(m, &f)) < least;
    default:
      return false;
  }
}

bool FindIn(const Message& m, bool refuse_embedder_only,
            ConfigViolation& violation) {
  const Reflection* r = m.GetReflection();
  std::vector<const FieldDescriptor*> set;
  r->ListFields(m, &set);
  for (const FieldDescriptor* f : set) {
    if (f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
      const int n = f->is_repeated() ? r->FieldSize(m, f) : 1;
      for (int i = 0; i < n; ++i) {
        violation.path.emplace_back(f, f->is_repeated() ? i : -1);
        const Message& inner = f->is_repeated() ? r->GetRepeatedMessage(m, f, i)
                                                : r->GetMessage(m, f);
        if (FindIn(inner, refuse_embedder_only, violation)) return true;
        violation.path.pop_back();
      }
      continue;
    }
    if (refuse_embedder_only && f->options().GetExtension(embedder_only)) {
      violation.path.emplace_back(f, -1);
      violation.message = absl::StrCat(
          f->name(),
          " is for programs that embed the broker; it cannot be set "
          "here");
      return true;
    }
    if (!f->is_repeated() && BelowMinimum(m, *f)) {
      violation.path.emplace_back(f, -1);
      violation.message =
          absl::StrCat(f->name(), " must be at least ", MinOf(*f));
      return true;
    }
    if (!f->is_repeated() && AboveMaximum(m, *f)) {
      violation.path.emplace_back(f, -1);
      violation.message =
          absl::StrCat(f->name(), " must be at most ", *MaxOf(*f));
      return true;
    }
  }
  return false;
}

}  // namespace

std::optional<ConfigViolation> FindViolation(const Message& config,
                                             bool refuse_embedder_only) {
  ConfigViolation violation;
  if (FindIn(config, refuse_embedder_only, violation)) return violation;
  return std::nullopt;
}

absl::Status CheckMinimums(const Message& config) {
  std::optional<ConfigViolation> v = FindViolation(config, false);
  if (!v.has_value()) return absl::OkStatus();
  std::vector<std::string> names;
  for (const auto& [field, index] : v->path) {
    names.push_back(index < 0 ? field->name()
                              : absl::StrCat(field->name(), "[", index, "]"));
  }
  names.pop_back();
  names.push_back(v->message);
  return absl::InvalidArgumentError(absl::StrJoin(names, "."));
}

}  // namespace manifold::config
