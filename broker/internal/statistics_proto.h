// File: broker/internal/statistics_proto.h
// -----------------------------------------------------------------------------
//
// The broker's statistics in their wire form, as published on "$sys/stats"
// and answered to requests for it.

#ifndef MANIFOLD_BROKER_INTERNAL_STATISTICS_PROTO_H_
#define MANIFOLD_BROKER_INTERNAL_STATISTICS_PROTO_H_

#include "broker/options.h"
#include "broker/statistics.h"
#include "core/manifold.pb.h"

namespace manifold::internal {

// `options` supplies the policy in force.
wire::Statistics StatisticsToProto(const BrokerStatistics& statistics,
                                   const BrokerOptions& options);

}  // namespace manifold::internal

#endif  // MANIFOLD_BROKER_INTERNAL_STATISTICS_PROTO_H_
