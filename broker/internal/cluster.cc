// The broker's side of a cluster (broker/cluster_link.h): telling the link
// which patterns this node's clients subscribe to, and emitting the events
// the link reports.

#include <utility>

#include "broker/internal/broker_core.h"
#include "broker/sys_topics.h"

namespace manifold::internal {

void BrokerCore::AttachCluster(ClusterLink* link) {
  cluster_ = link;
  cluster_interest_.clear();
  if (link == nullptr) return;
  index_.ForEach([this](const Subscription& sub) {
    if (++cluster_interest_[sub.pattern] == 1) {
      cluster_->OnLocalInterest(sub.pattern, /*added=*/true);
    }
  });
}

void BrokerCore::CountInterest(absl::string_view pattern, int delta) {
  if (delta > 0) {
    if (++cluster_interest_[pattern] == 1) {
      cluster_->OnLocalInterest(pattern, /*added=*/true);
    }
    return;
  }
  auto it = cluster_interest_.find(pattern);
  if (it == cluster_interest_.end()) return;
  if (--it->second == 0) {
    cluster_interest_.erase(it);
    cluster_->OnLocalInterest(pattern, /*added=*/false);
  }
}

void BrokerCore::ReportClusterEvent(wire::BrokerEvent event, absl::Time now) {
  Advance(now);
  absl::string_view topic;
  switch (event.kind_case()) {
    case wire::BrokerEvent::kClusterNodeJoined:
      topic = sys_topics::kClusterNodeJoined;
      break;
    case wire::BrokerEvent::kClusterNodeLeft:
      topic = sys_topics::kClusterNodeLeft;
      break;
    case wire::BrokerEvent::kClusterRedisLost:
      topic = sys_topics::kClusterRedisLost;
      break;
    case wire::BrokerEvent::kClusterRedisBack:
      topic = sys_topics::kClusterRedisBack;
      break;
    default:
      return;
  }
  origin_ = nullptr;
  Emit(std::move(event), topic);
  RunDeferred();
  FlushPolls();
}

}  // namespace manifold::internal
