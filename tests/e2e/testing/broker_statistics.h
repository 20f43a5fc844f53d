// File: tests/e2e/testing/broker_statistics.h
// -----------------------------------------------------------------------------
//
// For end-to-end tests: a running broker's statistics, asked for the way any
// client would (a Request to $sys/stats over a fresh native connection).
//
//   absl::StatusOr<wire::Statistics> stats = RequestStatistics(broker.tcp());
//   ASSERT_TRUE(stats.ok()) << stats.status();
//   EXPECT_EQ(stats->connections_refused(), 0u);

#ifndef MANIFOLD_TESTS_E2E_TESTING_BROKER_STATISTICS_H_
#define MANIFOLD_TESTS_E2E_TESTING_BROKER_STATISTICS_H_

#include "absl/status/statusor.h"
#include "core/manifold.pb.h"
#include "transports/sockets/endpoint.h"

namespace manifold::testing {

// Connects to the native listener `broker`, says Hello and requests the
// statistics. Fails if the broker does not answer within a few seconds or
// answers with anything else.
absl::StatusOr<wire::Statistics> RequestStatistics(const Endpoint& broker);

}  // namespace manifold::testing

#endif  // MANIFOLD_TESTS_E2E_TESTING_BROKER_STATISTICS_H_
