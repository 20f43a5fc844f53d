// File: tests/transports/testing/event_loop_params.h
// -----------------------------------------------------------------------------
//
// The event loops this build of manifoldd supports ("epoll", and "io_uring"
// and "uv" when their libraries were found), for end-to-end tests that must
// run against every loop. Parameterize on it, so a new loop is covered by
// every such test without copying one:
//
//   class PubSubTest : public ::testing::TestWithParam<std::string> {};
//   TEST_P(PubSubTest, Works) { StartBroker({"--loop=" + GetParam()}); ... }
//   INSTANTIATE_TEST_SUITE_P(Loops, PubSubTest,
//                            ::testing::ValuesIn(testing::EventLoops()),
//                            testing::LoopName);

#ifndef MANIFOLD_TESTS_TRANSPORTS_TESTING_EVENT_LOOP_PARAMS_H_
#define MANIFOLD_TESTS_TRANSPORTS_TESTING_EVENT_LOOP_PARAMS_H_

#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "transports/loops/event_loops.h"

namespace manifold::testing {

// The loop names manifoldd accepts for --loop, in a fixed order.
inline std::vector<std::string> EventLoops() {
  return absl::StrSplit(AvailableEventLoops(), ',', absl::SkipEmpty());
}

// Names parameterized test cases after their loop ("epoll", "io_uring").
inline std::string LoopName(const ::testing::TestParamInfo<std::string>& info) {
  return info.param;
}

}  // namespace manifold::testing

#endif  // MANIFOLD_TESTS_TRANSPORTS_TESTING_EVENT_LOOP_PARAMS_H_
