#include "client/cli/bench_report.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "client/cli/json.h"

namespace manifold::cli {
namespace {

using load::LoadReport;
using load::Scenario;

std::string Plural(uint64_t n, absl::string_view one, absl::string_view many) {
  return absl::StrCat(n, " ", n == 1 ? one : many);
}

// "41.2us", "1.25ms", "2.001s".
std::string Short(absl::Duration d) {
  const double us = absl::ToDoubleMicroseconds(d);
  if (us < 1000) return absl::StrFormat("%.1fus", us);
  if (us < 1'000'000) return absl::StrFormat("%.2fms", us / 1000);
  return absl::StrFormat("%.3fs", us / 1'000'000);
}

std::string Rate(double per_second) {
  return WithThousands(static_cast<uint64_t>(std::llround(per_second)));
}

std::string Number(double value, int decimals) {
  return absl::StrFormat("%.*f", decimals, value);
}

// "native", "nats", or "bayeux" for a Bayeux run.
absl::string_view ProtocolOf(const load::LoadOptions& o) {
  return o.bayeux_path.empty() ? load::ProtocolName(o.protocol) : "bayeux";
}

std::string Headline(const LoadReport& r) {
  const load::LoadOptions& o = r.options;
  std::string who;
  switch (o.scenario) {
    case Scenario::kRequestReply:
      who = absl::StrCat(Plural(o.publishers, "requester", "requesters"), " x ",
                         Plural(o.subscribers, "responder", "responders"), ", ",
                         o.inflight, " in flight each");
      break;
    case Scenario::kPing:
      who = Plural(o.publishers, "client", "clients");
      break;
    case Scenario::kDurable:
      who = absl::StrCat(Plural(o.publishers, "publisher", "publishers"),
                         " to a stored subject, ", o.window,
                         " unacknowledged each at most");
      break;
    case Scenario::kReplay:
      who = absl::StrCat("1 subscriber replaying ",
                         o.replay_stream.empty()
                             ? "the bench stream"
                             : absl::StrCat("stream ", o.replay_stream),
                         " from sequence ", o.replay_from);
      break;
    case Scenario::kQueue:
      who = absl::StrCat(Plural(o.publishers, "publisher", "publishers"),
                         " x queue group of ", o.subscribers);
      break;
    case Scenario::kWildcard:
      who = absl::StrCat(
          Plural(o.publishers, "publisher", "publishers"), " (", o.subjects,
          " subjects) x ",
          Plural(o.subscribers, "wildcard subscriber", "wildcard subscribers"));
      break;
    default:
      who = absl::StrCat(Plural(o.publishers, "publisher", "publishers"), " x ",
                         Plural(o.subscribers, "subscriber", "subscribers"));
  }
  // A replay reads whatever was stored, of any size.
  const std::string sizes =
      o.scenario == Scenario::kReplay
          ? std::string()
          : absl::StrCat(", ", o.payload_bytes, "-byte payloads");
  return absl::StrCat("manifold bench ", load::ScenarioName(o.scenario), ", ",
                      ProtocolOf(o), ", ", o.server, ": ", who, sizes);
}

std::string Checked(const LoadReport& r) {
  const bool round_trip = load::IsRoundTrip(r.options.scenario);
  if (r.clean()) {
    switch (r.options.scenario) {
      case Scenario::kDurable:
        return "every publish acknowledged once, durable";
      case Scenario::kReplay:
        return "every stored message arrived once, in sequence";
      default:
        return round_trip ? "every request answered once"
                          : "every message arrived once, in order";
    }
  }
  std::vector<std::string> problems;
  if (r.lost > 0) {
    problems.push_back(
        absl::StrCat("LOST ", WithThousands(r.lost),
                     r.timed_out ? " (nothing more arrived)" : ""));
  }
  if (r.duplicates > 0) {
    problems.push_back(
        absl::StrCat("DUPLICATED ", WithThousands(r.duplicates)));
  }
  if (r.reordered > 0) {
    problems.push_back(absl::StrCat("REORDERED ", WithThousands(r.reordered)));
  }
  if (r.corrupt > 0) {
    problems.push_back(absl::StrCat("UNEXPECTED ", WithThousands(r.corrupt)));
  }
  if (r.errors > 0) {
    problems.push_back(absl::StrCat(WithThousands(r.errors),
                                    " SERVER ERRORS, first: ", r.first_error));
  }
  return absl::StrJoin(problems, ", ");
}

std::string Text(const LoadReport& r) {
  std::vector<std::string> lines = {Headline(r)};
  const double seconds = absl::ToDoubleSeconds(r.elapsed);
  if (r.options.scenario == Scenario::kReplay) {
    lines.push_back(absl::StrFormat(
        "  %-9s %12s msgs in %-10s %12s msgs/s  %.1f MB/s", "replayed",
        WithThousands(r.received), Short(r.elapsed),
        Rate(r.received_per_second),
        seconds > 0 ? static_cast<double>(r.received_bytes) / seconds / 1e6
                    : 0.0));
  } else if (load::MeasuresLatency(r.options.scenario)) {
    const bool ping = r.options.scenario == Scenario::kPing;
    const bool durable = r.options.scenario == Scenario::kDurable;
    lines.push_back(absl::StrFormat("  %-9s %12s in %-10s %12s %s/s",
                                    ping      ? "pings"
                                    : durable ? "acked"
                                              : "requests",
                                    WithThousands(r.received), Short(r.elapsed),
                                    Rate(r.received_per_second),
                                    ping      ? "pings"
                                    : durable ? "msgs"
                                              : "req"));
    const load::LatencySummary& l = r.latency;
    lines.push_back(absl::StrCat("  latency   p50 ", Short(l.p50), "  p90 ",
                                 Short(l.p90), "  p99 ", Short(l.p99), "  max ",
                                 Short(l.max), "  (mean ", Short(l.mean),
                                 ", min ", Short(l.min), ")"));
  } else {
    lines.push_back(absl::StrFormat("  %-9s %12s msgs in %-10s %12s msgs/s",
                                    "sent", WithThousands(r.sent),
                                    Short(r.elapsed), Rate(r.sent_per_second)));
    lines.push_back(absl::StrFormat(
        "  %-9s %12s msgs %13s %12s msgs/s  %.1f MB/s", "received",
        WithThousands(r.received), "", Rate(r.received_per_second),
        seconds > 0 ? static_cast<double>(r.received_bytes) / seconds / 1e6
                    : 0.0));
  }
  lines.push_back(absl::StrCat("  checked   ", Checked(r)));
  lines.push_back(absl::StrCat(
      "  client    ", Short(r.client_cpu), " CPU, ", r.options.client_threads,
      r.options.client_threads == 1 ? " thread" : " threads"));
  return absl::StrJoin(lines, "\n");
}

std::string Json(const LoadReport& r) {
  const load::LoadOptions& o = r.options;
  JsonObject j;
  j.Add("scenario", load::ScenarioName(o.scenario))
      .Add("protocol", ProtocolOf(o))
      .Add("server", o.server)
      .Add("publishers", int64_t{o.publishers})
      .Add("subscribers", int64_t{o.subscribers})
      .Add("payload_bytes", uint64_t{o.payload_bytes})
      .Add("count", o.messages)
      .Add("window", o.window)
      .Add("inflight", int64_t{o.inflight})
      .Add("subjects", int64_t{o.subjects})
      .Add("client_threads", int64_t{o.client_threads})
      .AddRaw("elapsed_s", Number(absl::ToDoubleSeconds(r.elapsed), 6))
      .Add("sent", r.sent)
      .Add("expected", r.expected)
      .Add("received", r.received)
      .Add("received_bytes", r.received_bytes)
      .Add("lost", r.lost)
      .Add("duplicates", r.duplicates)
      .Add("reordered", r.reordered)
      .Add("corrupt", r.corrupt)
      .Add("errors", r.errors)
      .Add("first_error", r.first_error)
      .Add("timed_out", r.timed_out)
      .Add("clean", r.clean())
      .AddRaw("sent_per_s", Number(r.sent_per_second, 1))
      .AddRaw("received_per_s", Number(r.received_per_second, 1))
      .AddRaw("client_cpu_s", Number(absl::ToDoubleSeconds(r.client_cpu), 3));
  if (load::MeasuresLatency(o.scenario)) {
    const load::LatencySummary& l = r.latency;
    auto us = [](absl::Duration d) {
      return Number(absl::ToDoubleMicroseconds(d), 1);
    };
    j.AddRaw(
        "latency_us",
        absl::StrCat("{\"min\":", us(l.min), ",\"p50\":", us(l.p50),
                     ",\"p90\":", us(l.p90), ",\"p99\":", us(l.p99),
                     ",\"max\":", us(l.max), ",\"mean\":", us(l.mean), "}"));
  }
  return j.str();
}

}  // namespace

std::string WithThousands(uint64_t value) {
  std::string digits = absl::StrCat(value);
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out.push_back(',');
    out.push_back(digits[i]);
  }
  return out;
}

std::string FormatBenchReport(const LoadReport& report, bool json) {
  return json ? Json(report) : Text(report);
}

std::string FormatBenchProgress(const load::LoadProgress& now,
                                const load::LoadProgress& previous) {
  const double seconds = absl::ToDoubleSeconds(now.elapsed - previous.elapsed);
  const double rate =
      seconds > 0
          ? static_cast<double>(now.received - previous.received) / seconds
          : 0;
  return absl::StrCat("bench: ", Short(now.elapsed), ", sent ",
                      WithThousands(now.sent), ", received ",
                      WithThousands(now.received), " (", Rate(rate), "/s)");
}

}  // namespace manifold::cli
