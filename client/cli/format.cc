#include "client/cli/format.h"

#include <algorithm>
#include <map>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "client/cli/json.h"

namespace manifold::cli {
namespace {

using google::protobuf::FieldDescriptor;
using google::protobuf::Reflection;

// Calls `visit(field)` for every field of `message`, in declaration order,
// whether or not it is set: scripts find the same keys every time.
template <typename Visit>
void ForEachField(const google::protobuf::Message& message, Visit visit) {
  const google::protobuf::Descriptor* d = message.GetDescriptor();
  for (int i = 0; i < d->field_count(); ++i) visit(d->field(i));
}

void AddField(const google::protobuf::Message& m, const FieldDescriptor* f,
              JsonObject& json) {
  const Reflection* r = m.GetReflection();
  if (f->is_repeated()) return;  // events and statistics have none
  switch (f->cpp_type()) {
    case FieldDescriptor::CPPTYPE_UINT64:
      json.Add(f->name(), r->GetUInt64(m, f));
      break;
    case FieldDescriptor::CPPTYPE_UINT32:
      json.Add(f->name(), uint64_t{r->GetUInt32(m, f)});
      break;
    case FieldDescriptor::CPPTYPE_INT64:
      json.Add(f->name(), int64_t{r->GetInt64(m, f)});
      break;
    case FieldDescriptor::CPPTYPE_INT32:
      json.Add(f->name(), int64_t{r->GetInt32(m, f)});
      break;
    case FieldDescriptor::CPPTYPE_BOOL:
      json.Add(f->name(), r->GetBool(m, f));
      break;
    case FieldDescriptor::CPPTYPE_ENUM:
      json.Add(f->name(), r->GetEnum(m, f)->name());
      break;
    case FieldDescriptor::CPPTYPE_STRING:
      json.AddBytes(f->name(), r->GetString(m, f));
      break;
    default:
      break;
  }
}

std::string FieldText(const google::protobuf::Message& m,
                      const FieldDescriptor* f) {
  const Reflection* r = m.GetReflection();
  switch (f->cpp_type()) {
    case FieldDescriptor::CPPTYPE_UINT64:
      return absl::StrCat(r->GetUInt64(m, f));
    case FieldDescriptor::CPPTYPE_UINT32:
      return absl::StrCat(r->GetUInt32(m, f));
    case FieldDescriptor::CPPTYPE_INT64:
      return absl::StrCat(r->GetInt64(m, f));
    case FieldDescriptor::CPPTYPE_INT32:
      return absl::StrCat(r->GetInt32(m, f));
    case FieldDescriptor::CPPTYPE_BOOL:
      return r->GetBool(m, f) ? "true" : "false";
    case FieldDescriptor::CPPTYPE_ENUM:
      return r->GetEnum(m, f)->name();
    case FieldDescriptor::CPPTYPE_STRING:
      return absl::StrCat("\"", Printable(r->GetString(m, f)), "\"");
    default:
      return "?";
  }
}

}  // namespace

std::string Printable(absl::string_view bytes) {
  if (!IsUtf8(bytes)) return absl::CHexEscape(bytes);
  std::string out;
  out.reserve(bytes.size());
  for (const char c : bytes) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (u >= 0x20 && u != 0x7f) {
      out += c;
    } else {
      out += absl::CHexEscape(absl::string_view(&c, 1));
    }
  }
  return out;
}

std::string HeadersJson(const Headers& headers) {
  // Keys in first-seen order, values in order, as in Go's http.Header.
  std::vector<std::string> keys;
  std::map<std::string, std::vector<std::string>> values;
  for (const auto& [key, value] : headers) {
    if (!values.contains(key)) keys.push_back(key);
    values[key].push_back(JsonString(IsUtf8(value) ? value : Printable(value)));
  }
  std::vector<std::string> entries;
  for (const std::string& key : keys) {
    entries.push_back(absl::StrCat(JsonString(key), ":[",
                                   absl::StrJoin(values[key], ","), "]"));
  }
  return absl::StrCat("{", absl::StrJoin(entries, ","), "}");
}

std::string FormatTimestamp(absl::Time time) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", time, absl::UTCTimeZone());
}

std::string FormatMessage(const Message& m, bool json) {
  const bool from_stream = m.stream_seq != 0;
  if (json) {
    JsonObject o;
    o.Add("topic", m.topic);
    if (from_stream) {
      o.Add("seq", m.stream_seq).Add("time", FormatTimestamp(m.stream_time));
      if (m.redelivered) o.Add("redelivered", true);
    }
    o.AddBytes("payload", m.payload);
    if (!m.headers.empty()) o.AddRaw("headers", HeadersJson(m.headers));
    if (!m.reply_to.empty()) o.Add("reply_to", m.reply_to);
    return o.str();
  }
  std::string label = Printable(m.topic);
  if (from_stream) {
    absl::StrAppend(&label, " seq=", m.stream_seq,
                    " time=", FormatTimestamp(m.stream_time));
    if (m.redelivered) absl::StrAppend(&label, " redelivered");
  }
  for (const auto& [key, value] : m.headers) {
    absl::StrAppend(&label, " ", Printable(key), "=", Printable(value));
  }
  if (!m.reply_to.empty()) {
    absl::StrAppend(&label, " reply_to=", Printable(m.reply_to));
  }
  return absl::StrCat("[", label, "] ", Printable(m.payload));
}

std::string FieldsText(const google::protobuf::Message& message) {
  std::vector<std::string> parts;
  ForEachField(message, [&](const FieldDescriptor* f) {
    if (!f->is_repeated()) {
      parts.push_back(absl::StrCat(f->name(), "=", FieldText(message, f)));
    }
  });
  return absl::StrJoin(parts, " ");
}

std::string FormatEvent(absl::string_view topic, const wire::BrokerEvent& event,
                        bool json) {
  const Reflection* r = event.GetReflection();
  const google::protobuf::OneofDescriptor* kind =
      event.GetDescriptor()->FindOneofByName("kind");
  const FieldDescriptor* set = r->GetOneofFieldDescriptor(event, kind);
  const std::string name = set == nullptr ? "unknown" : set->name();
  if (json) {
    JsonObject o;
    o.Add("topic", topic).Add("event", name);
    if (set != nullptr) {
      const google::protobuf::Message& body = r->GetMessage(event, set);
      ForEachField(body,
                   [&](const FieldDescriptor* f) { AddField(body, f, o); });
    }
    return o.str();
  }
  std::string line = absl::StrCat(Printable(topic), " ", name);
  if (set != nullptr) {
    absl::StrAppend(&line, " ", FieldsText(r->GetMessage(event, set)));
  }
  return line;
}

std::string FormatStatistics(const wire::Statistics& stats, bool json) {
  // The counters, then the two repeated fields as "name=count" pairs: the
  // open connections by protocol ("native=2 nats=1", or {"native":2,"nats":1}
  // in JSON) and TLS failures by reason (only when the broker reports TLS).
  constexpr absl::string_view kByProtocol = "connections_by_protocol";
  constexpr absl::string_view kTlsFailures = "tls_failures";
  // And the durable streams, one "name: messages, bytes, seq first-last"
  // each (only when the broker has some).
  constexpr absl::string_view kStreams = "streams";
  // And a node's cluster figures, "name=value" pairs (only in a cluster).
  constexpr absl::string_view kCluster = "cluster";
  if (json) {
    JsonObject o;
    ForEachField(stats,
                 [&](const FieldDescriptor* f) { AddField(stats, f, o); });
    JsonObject by_protocol;
    for (const wire::ProtocolConnections& p : stats.connections_by_protocol()) {
      by_protocol.Add(p.protocol(), uint64_t{p.connections()});
    }
    o.AddRaw(kByProtocol, by_protocol.str());
    if (stats.tls_failures_size() > 0) {
      JsonObject by_reason;
      for (const wire::TlsFailures& f : stats.tls_failures()) {
        by_reason.Add(f.reason(), uint64_t{f.count()});
      }
      o.AddRaw(kTlsFailures, by_reason.str());
    }
    if (stats.streams_size() > 0) {
      std::vector<std::string> streams;
      for (const wire::StreamInfo& s : stats.streams()) {
        JsonObject one;
        one.Add("name", s.config().name())
            .Add("messages", uint64_t{s.messages()})
            .Add("bytes", uint64_t{s.bytes()})
            .Add("first_seq", uint64_t{s.first_seq()})
            .Add("last_seq", uint64_t{s.last_seq()})
            .Add("expired", uint64_t{s.expired()});
        streams.push_back(one.str());
      }
      o.AddRaw(kStreams, absl::StrCat("[", absl::StrJoin(streams, ","), "]"));
    }
    if (stats.has_cluster()) {
      JsonObject cluster;
      ForEachField(stats.cluster(), [&](const FieldDescriptor* f) {
        AddField(stats.cluster(), f, cluster);
      });
      o.AddRaw(kCluster, cluster.str());
    }
    return o.str();
  }
  size_t width = kByProtocol.size();
  ForEachField(stats, [&](const FieldDescriptor* f) {
    width = std::max(width, f->name().size());
  });
  std::vector<std::string> lines;
  ForEachField(stats, [&](const FieldDescriptor* f) {
    if (f->is_repeated() || f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
      return;
    }
    // A table for people: the policy's name needs no quotes.
    const std::string value =
        f->cpp_type() == FieldDescriptor::CPPTYPE_STRING
            ? Printable(stats.GetReflection()->GetString(stats, f))
            : FieldText(stats, f);
    lines.push_back(absl::StrCat(
        f->name(), std::string(width + 2 - f->name().size(), ' '), value));
  });
  std::vector<std::string> protocols;
  for (const wire::ProtocolConnections& p : stats.connections_by_protocol()) {
    protocols.push_back(
        absl::StrCat(Printable(p.protocol()), "=", p.connections()));
  }
  lines.push_back(absl::StrCat(
      kByProtocol, std::string(width + 2 - kByProtocol.size(), ' '),
      protocols.empty() ? "-" : absl::StrJoin(protocols, " ")));
  if (stats.tls_failures_size() > 0) {
    std::vector<std::string> reasons;
    for (const wire::TlsFailures& f : stats.tls_failures()) {
      reasons.push_back(absl::StrCat(Printable(f.reason()), "=", f.count()));
    }
    lines.push_back(absl::StrCat(
        kTlsFailures, std::string(width + 2 - kTlsFailures.size(), ' '),
        absl::StrJoin(reasons, " ")));
  }
  if (stats.streams_size() > 0) {
    std::vector<std::string> streams;
    for (const wire::StreamInfo& s : stats.streams()) {
      streams.push_back(absl::StrCat(
          Printable(s.config().name()), ": ", s.messages(), " messages, ",
          s.bytes(), " bytes, seq ", s.first_seq(), "-", s.last_seq()));
    }
    lines.push_back(absl::StrCat(kStreams,
                                 std::string(width + 2 - kStreams.size(), ' '),
                                 absl::StrJoin(streams, "; ")));
  }
  if (stats.has_cluster()) {
    lines.push_back(absl::StrCat(kCluster,
                                 std::string(width + 2 - kCluster.size(), ' '),
                                 FieldsText(stats.cluster())));
  }
  return absl::StrJoin(lines, "\n");
}

}  // namespace manifold::cli
