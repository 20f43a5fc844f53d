// File: core/http/prometheus.h
// -----------------------------------------------------------------------------
//
// The broker's statistics in the Prometheus text exposition format (version
// 0.0.4): one `manifold_*` metric per statistic, each with HELP and TYPE
// lines; gauges for what is true now (connections, subscriptions, ...),
// counters (`_total`) for what has happened since the broker started, and
// the open connections by protocol as `manifold_connections_by_protocol
// {protocol="nats"}`.
//
// Example:
//
//   std::string text;
//   AppendPrometheusText(statistics, text);
//   // # HELP manifold_connections Connections welcomed and not closing.
//   // # TYPE manifold_connections gauge
//   // manifold_connections 3

#ifndef MANIFOLD_CORE_HTTP_PROMETHEUS_H_
#define MANIFOLD_CORE_HTTP_PROMETHEUS_H_

#include <string>

#include "absl/strings/string_view.h"
#include "core/manifold.pb.h"

namespace manifold::http {

// The Content-Type of the text format.
inline constexpr absl::string_view kPrometheusContentType =
    "text/plain; version=0.0.4; charset=utf-8";

void AppendPrometheusText(const wire::Statistics& statistics, std::string& out);

}  // namespace manifold::http

#endif  // MANIFOLD_CORE_HTTP_PROMETHEUS_H_
