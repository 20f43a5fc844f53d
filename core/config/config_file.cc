#include "core/config/config_file.h"

#include <optional>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "core/config/config_fields.h"
#include "core/config/config_options.pb.h"
#include "google/protobuf/io/tokenizer.h"
#include "google/protobuf/text_format.h"
#include "google/protobuf/util/json_util.h"

namespace manifold::config {
namespace {

using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;
using google::protobuf::TextFormat;

// Keeps the first error of a text-format parse, with its position.
class FirstError : public google::protobuf::io::ErrorCollector {
 public:
  void AddError(int line, int column, const std::string& message) override {
    if (!has_error_) {
      has_error_ = true;
      line_ = line;
      column_ = column;
      message_ = message;
    }
  }
  void AddWarning(int line, int column, const std::string& message) override {}

  bool has_error() const { return has_error_; }
  int line() const { return line_; }
  int column() const { return column_; }
  const std::string& message() const { return message_; }

 private:
  bool has_error_ = false;
  int line_ = 0;
  int column_ = 0;
  std::string message_;
};

absl::Status At(absl::string_view filename, int line, int column,
                absl::string_view what) {
  // The parser counts from 0; people count from 1.
  return absl::InvalidArgumentError(
      absl::StrCat(filename, ":", line + 1, ":", column + 1, ": ", what));
}

// The line and column of `offset` in `text`, counted from 0.
std::pair<int, int> PositionOf(absl::string_view text, size_t offset) {
  int line = 0;
  size_t line_start = 0;
  for (size_t i = 0; i < offset && i < text.size(); ++i) {
    if (text[i] == '\n') {
      ++line;
      line_start = i + 1;
    }
  }
  return {line, static_cast<int>(offset - line_start)};
}

// "max_connections" -> "maxConnections", as protobuf's JSON mapping names it.
std::string LowerCamel(absl::string_view name) {
  std::string out;
  bool upper = false;
  for (char c : name) {
    if (c == '_') {
      upper = true;
    } else {
      out.push_back(upper ? absl::ascii_toupper(c) : c);
      upper = false;
    }
  }
  return out;
}

// The position of the first `"name"` key (or its lowerCamelCase JSON name) in
// JSON text, or of the text's start when neither is there: protobuf's JSON
// parser reports no positions.
std::pair<int, int> JsonKeyPosition(absl::string_view text,
                                    absl::string_view name) {
  if (name.empty()) return {0, 0};
  for (const std::string& key : {std::string(name), LowerCamel(name)}) {
    const size_t at = text.find(absl::StrCat("\"", key, "\""));
    if (at != absl::string_view::npos) return PositionOf(text, at);
  }
  return {0, 0};
}

// The field a protobuf JSON error names: "(broker.max_connections): invalid
// value ..." or "nope: Cannot find field."; empty when it names none.
std::string FieldInJsonError(absl::string_view message) {
  if (size_t open = message.find('('); open != absl::string_view::npos) {
    const size_t close = message.find(')', open);
    if (close != absl::string_view::npos) {
      absl::string_view path = message.substr(open + 1, close - open - 1);
      return std::string(path.substr(path.rfind('.') + 1));
    }
  }
  if (size_t colon = message.find(':'); colon != absl::string_view::npos) {
    return std::string(absl::StripAsciiWhitespace(message.substr(0, colon)));
  }
  return "";
}

absl::Status ParseText(absl::string_view text, absl::string_view filename,
                       Message& config, TextFormat::ParseInfoTree& locations) {
  TextFormat::Parser parser;
  FirstError errors;
  parser.RecordErrorsTo(&errors);
  parser.WriteLocationsTo(&locations);
  // Merge: fields the file leaves out keep what `config` had.
  if (parser.MergeFromString(std::string(text), &config)) {
    return absl::OkStatus();
  }
  // protobuf names the type at fault; the field's name says enough.
  std::string what = errors.has_error() ? errors.message() : "cannot parse";
  absl::StrReplaceAll(
      {{absl::StrCat("Message type \"", config.GetDescriptor()->full_name(),
                     "\" has no field named "),
        "unknown field "}},
      &what);
  return At(filename, errors.line(), errors.column(), what);
}

absl::Status ParseJson(absl::string_view text, absl::string_view filename,
                       Message& config) {
  std::unique_ptr<Message> parsed(config.New());
  google::protobuf::util::JsonParseOptions options;
  const auto status = google::protobuf::util::JsonStringToMessage(
      google::protobuf::StringPiece(text.data(), text.size()), parsed.get(),
      options);
  if (!status.ok()) {
    // One line: protobuf may add an excerpt of the input on lines of its own.
    const absl::string_view full(status.message().data(),
                                 status.message().size());
    const std::string message(full.substr(0, full.find('\n')));
    const auto [line, column] =
        JsonKeyPosition(text, FieldInJsonError(message));
    return At(filename, line, column, message);
  }
  config.MergeFrom(*parsed);
  return absl::OkStatus();
}

// Where the field that `violation` names was written, for text-format files.
std::pair<int, int> TextPosition(const ConfigViolation& violation,
                                 const TextFormat::ParseInfoTree& locations) {
  const TextFormat::ParseInfoTree* tree = &locations;
  std::pair<int, int> position{0, 0};
  for (size_t i = 0; i < violation.path.size() && tree != nullptr; ++i) {
    const auto& [field, index] = violation.path[i];
    TextFormat::ParseLocation at = tree->GetLocation(field, index);
    if (at.line >= 0) position = {at.line, at.column};
    if (i + 1 < violation.path.size()) {
      tree = tree->GetTreeForNested(field, index);
    }
  }
  return position;
}

void PrintMessage(const Message& m, int depth, std::string& out);

void PrintComment(absl::string_view indent, absl::string_view help,
                  std::string& out) {
  if (help.empty()) return;
  for (absl::string_view line : absl::StrSplit(help, '\n')) {
    absl::StrAppend(&out, indent, "# ", line, "\n");
  }
}

void PrintField(const Message& m, const FieldDescriptor& f, int depth,
                std::string& out) {
  const std::string indent(2 * depth, ' ');
  const Reflection* r = m.GetReflection();
  PrintComment(indent, f.options().GetExtension(help), out);
  const int count = f.is_repeated() ? r->FieldSize(m, &f) : 1;
  for (int i = 0; i < count; ++i) {
    const int index = f.is_repeated() ? i : -1;
    if (f.cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
      const Message& inner = f.is_repeated() ? r->GetRepeatedMessage(m, &f, i)
                                             : r->GetMessage(m, &f);
      absl::StrAppend(&out, indent, f.name(), " {\n");
      PrintMessage(inner, depth + 1, out);
      absl::StrAppend(&out, indent, "}\n");
      continue;
    }
    std::string value;
    TextFormat::PrintFieldValueToString(m, &f, index, &value);
    absl::StrAppend(&out, indent, f.name(), ": ", value);
    if (f.type() == FieldDescriptor::TYPE_UINT64 &&
        absl::EndsWith(f.name(), "_ms") && !f.is_repeated()) {
      absl::StrAppend(
          &out, "  # ",
          absl::FormatDuration(absl::Milliseconds(r->GetUInt64(m, &f))));
    }
    absl::StrAppend(&out, "\n");
  }
}

void PrintMessage(const Message& m, int depth, std::string& out) {
  const auto* descriptor = m.GetDescriptor();
  for (int i = 0; i < descriptor->field_count(); ++i) {
    const FieldDescriptor& f = *descriptor->field(i);
    // Embedders' settings cannot be set in a file; printing them would make
    // a file that does not read back.
    if (f.options().GetExtension(embedder_only)) continue;
    if (f.is_repeated() && m.GetReflection()->FieldSize(m, &f) == 0) {
      PrintComment(std::string(2 * depth, ' '), f.options().GetExtension(help),
                   out);
      absl::StrAppend(&out, std::string(2 * depth, ' '), "# ", f.name(),
                      ": none\n");
      continue;
    }
    PrintField(m, f, depth, out);
  }
}

}  // namespace

absl::Status ParseConfigFile(absl::string_view text, absl::string_view filename,
                             Message& config) {
  const absl::string_view stripped = absl::StripLeadingAsciiWhitespace(text);
  const bool json = absl::StartsWith(stripped, "{");
  TextFormat::ParseInfoTree locations;
  absl::Status parsed = json ? ParseJson(text, filename, config)
                             : ParseText(text, filename, config, locations);
  if (!parsed.ok()) return parsed;
  std::optional<ConfigViolation> violation =
      FindViolation(config, /*refuse_embedder_only=*/true);
  if (!violation.has_value()) return absl::OkStatus();
  const auto [line, column] =
      json ? JsonKeyPosition(text, violation->path.back().first->name())
           : TextPosition(*violation, locations);
  return At(filename, line, column, violation->message);
}

std::string PrintConfig(const Message& config) {
  std::string out;
  PrintMessage(config, 0, out);
  return out;
}

}  // namespace manifold::config
