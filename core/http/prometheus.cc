#include "core/http/prometheus.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/reflection.h"

namespace manifold::http {
namespace {

struct Metric {
  absl::string_view field;
  bool gauge;
  absl::string_view help;
};

// Every uint64 field of wire::Statistics. A field missing here is still
// exported (as a counter, with a generic HELP line), so a new statistic
// never goes unseen.
constexpr Metric kMetrics[] = {
    {"connections", true, "Connections welcomed and not closing."},
    {"subscriptions", true, "Live subscriptions."},
    {"services", true, "Topics served by a connection."},
    {"requests_in_flight", true, "Requests waiting for their server."},
    {"connections_accepted", false, "Connections accepted."},
    {"connections_refused", false,
     "Connections refused: over the limit, shutting down, or not admitted."},
    {"messages_in", false, "Operations decoded from clients."},
    {"bytes_in", false, "Bytes received from clients."},
    {"messages_out", false, "Frames queued for clients."},
    {"bytes_out", false, "Bytes written to clients."},
    {"publishes", false, "Messages published (by clients and the broker)."},
    {"deliveries", false, "Deliveries queued for subscribers."},
    {"dropped_deliveries", false,
     "Deliveries dropped by the drop-and-count slow-consumer policy."},
    {"slow_consumer_disconnects", false,
     "Connections closed for not reading their output."},
    {"protocol_errors", false,
     "Fatal errors caused by a peer (bad input, limits, timeouts)."},
    {"operation_errors", false,
     "Operations and HTTP requests answered with an error."},
    {"requests", false, "Requests routed to a server."},
    {"requests_timed_out", false, "Requests whose server did not answer."},
    {"keepalive_disconnects", false,
     "Connections closed for missing keepalive pings."},
    {"dropped_events", false, "Embedder events dropped, queue full."},
    {"detached_sessions", true,
     "Sessions without a link: resumable ones waiting for their client, "
     "Bayeux sessions between polls."},
    {"sessions_resumed", false, "Sessions resumed on a new link."},
    {"sessions_expired", false,
     "Sessions that ended after session_timeout without a link."},
    {"session_overflows", false,
     "Sessions that ended because their buffer overflowed."},
    {"permission_denials", false, "Operations answered PERMISSION_DENIED."},
    {"tls_handshakes", false, "TLS handshakes completed."},
    {"stored_messages", false, "Messages captured by durable streams."},
    {"storage_batches", false,
     "Batches written to the streams' storage (at most one per turn)."},
    {"storage_failures", false,
     "Batches the streams' storage failed (disk full, I/O errors)."},
    {"storage_reads", false, "Reads of stored messages for replays."},
    {"replayed_messages", false, "Stored messages delivered by replays."},
    {"stream_refusals", false,
     "Publishes not stored because too much waited for the storage."},
};

// Per-stream figures, labelled with the stream's name.
struct StreamMetric {
  absl::string_view name;
  bool gauge;
  absl::string_view help;
  uint64_t (*value)(const wire::StreamInfo&);
};

constexpr StreamMetric kStreamMetrics[] = {
    {"stream_messages", true, "Messages a stream holds.",
     [](const wire::StreamInfo& s) { return s.messages(); }},
    {"stream_bytes", true, "Bytes of messages a stream holds.",
     [](const wire::StreamInfo& s) { return s.bytes(); }},
    {"stream_first_seq", true, "Sequence of a stream's oldest message.",
     [](const wire::StreamInfo& s) { return s.first_seq(); }},
    {"stream_last_seq", true, "Sequence of a stream's newest message.",
     [](const wire::StreamInfo& s) { return s.last_seq(); }},
    {"stream_expired", false,
     "Messages a stream's retention limits dropped since the broker started.",
     [](const wire::StreamInfo& s) { return s.expired(); }},
};

// A label value as the exposition format wants it: backslash, double quote
// and newline escaped.
std::string LabelValue(absl::string_view value) {
  std::string label;
  for (char c : value) {
    if (c == '\\' || c == '"') label.push_back('\\');
    if (c == '\n') {
      label += "\\n";
      continue;
    }
    label.push_back(c);
  }
  return label;
}

const Metric* FindMetric(absl::string_view field) {
  for (const Metric& m : kMetrics) {
    if (m.field == field) return &m;
  }
  return nullptr;
}

}  // namespace

void AppendPrometheusText(const wire::Statistics& statistics,
                          std::string& out) {
  const google::protobuf::Descriptor* descriptor = statistics.GetDescriptor();
  const google::protobuf::Reflection* reflection = statistics.GetReflection();
  for (int i = 0; i < descriptor->field_count(); ++i) {
    const google::protobuf::FieldDescriptor* field = descriptor->field(i);
    if (field->is_repeated() ||
        field->cpp_type() !=
            google::protobuf::FieldDescriptor::CPPTYPE_UINT64) {
      continue;
    }
    const Metric* metric = FindMetric(field->name());
    const bool gauge = metric != nullptr && metric->gauge;
    const std::string name =
        absl::StrCat("manifold_", field->name(), gauge ? "" : "_total");
    absl::StrAppend(&out, "# HELP ", name, " ",
                    metric != nullptr ? metric->help
                                      : absl::string_view("A broker counter."),
                    "\n# TYPE ", name, gauge ? " gauge\n" : " counter\n", name,
                    " ", reflection->GetUInt64(statistics, field), "\n");
  }
  absl::StrAppend(&out,
                  "# HELP manifold_connections_by_protocol Connections "
                  "welcomed and not closing, by protocol.\n"
                  "# TYPE manifold_connections_by_protocol gauge\n");
  for (const wire::ProtocolConnections& p :
       statistics.connections_by_protocol()) {
    // Protocol names are short identifiers chosen by codecs; escape anyway.
    absl::StrAppend(&out, "manifold_connections_by_protocol{protocol=\"",
                    LabelValue(p.protocol()), "\"} ", p.connections(), "\n");
  }
  if (statistics.streams_size() > 0) {
    for (const StreamMetric& m : kStreamMetrics) {
      const std::string name =
          absl::StrCat("manifold_", m.name, m.gauge ? "" : "_total");
      absl::StrAppend(&out, "# HELP ", name, " ", m.help, "\n# TYPE ", name,
                      m.gauge ? " gauge\n" : " counter\n");
      for (const wire::StreamInfo& s : statistics.streams()) {
        absl::StrAppend(&out, name, "{stream=\"", LabelValue(s.config().name()),
                        "\"} ", m.value(s), "\n");
      }
    }
  }
  // A node of a cluster: its figures, manifold_cluster_<field>.
  if (statistics.has_cluster()) {
    const wire::ClusterFigures& c = statistics.cluster();
    const google::protobuf::Descriptor* cd = c.GetDescriptor();
    const google::protobuf::Reflection* cr = c.GetReflection();
    for (int i = 0; i < cd->field_count(); ++i) {
      const google::protobuf::FieldDescriptor* field = cd->field(i);
      const bool flag =
          field->cpp_type() == google::protobuf::FieldDescriptor::CPPTYPE_BOOL;
      const bool gauge = flag || field->name() == "nodes" ||
                         absl::EndsWith(field->name(), "_patterns") ||
                         absl::EndsWith(field->name(), "_services");
      const std::string name = absl::StrCat("manifold_cluster_", field->name(),
                                            gauge ? "" : "_total");
      const uint64_t value =
          flag ? uint64_t{cr->GetBool(c, field)} : cr->GetUInt64(c, field);
      absl::StrAppend(
          &out, "# HELP ", name,
          " Cluster: ", absl::StrReplaceAll(field->name(), {{"_", " "}}),
          " (docs/cluster.md).\n# TYPE ", name,
          gauge ? " gauge\n" : " counter\n", name, " ", value, "\n");
    }
  }
  // Listed once the transport reports TLS (a broker without TLS has none).
  if (statistics.tls_failures_size() > 0) {
    absl::StrAppend(&out,
                    "# HELP manifold_tls_failures_total TLS connections "
                    "closed, by reason: plain text on a TLS port, a failed "
                    "or unfinished handshake, a bad record after it.\n"
                    "# TYPE manifold_tls_failures_total counter\n");
    for (const wire::TlsFailures& f : statistics.tls_failures()) {
      absl::StrAppend(&out, "manifold_tls_failures_total{reason=\"",
                      LabelValue(f.reason()), "\"} ", f.count(), "\n");
    }
  }
}

}  // namespace manifold::http
