// File: client/cli/bench_report.h
// -----------------------------------------------------------------------------
//
// How `manifold bench` shows a load run (client/load/load_runner.h): a few
// aligned lines for people, or one JSON object for scripts such as
// bench/compare.sh. Loss, duplicates, reordering and errors are always shown,
// never summarised away.
//
// Example:
//
//   absl::StatusOr<load::LoadReport> report = load::RunLoad(options);
//   std::cout << FormatBenchReport(*report, /*json=*/false) << "\n";
//
//   manifold bench fanout, nats, 127.0.0.1:4222: 1 publisher x 8 subscribers,
//   16-byte payloads
//     sent        500,000 msgs in 1.234s        405,186 msgs/s
//     received  4,000,000 msgs               3,241,491 msgs/s   51.9 MB/s
//     checked   every message arrived once, in order
//     client    1.02s CPU

#ifndef MANIFOLD_CLIENT_CLI_BENCH_REPORT_H_
#define MANIFOLD_CLIENT_CLI_BENCH_REPORT_H_

#include <cstdint>
#include <string>

#include "client/load/load_options.h"

namespace manifold::cli {

// The report as text (several lines, no trailing newline) or as one JSON
// object on one line.
std::string FormatBenchReport(const load::LoadReport& report, bool json);

// One progress line: "bench: 3s, sent 1,234,567, received 9,876,543
// (3,210,000/s)". `previous` is the snapshot a second earlier.
std::string FormatBenchProgress(const load::LoadProgress& now,
                                const load::LoadProgress& previous);

// 1234567 -> "1,234,567".
std::string WithThousands(uint64_t value);

}  // namespace manifold::cli

#endif  // MANIFOLD_CLIENT_CLI_BENCH_REPORT_H_
