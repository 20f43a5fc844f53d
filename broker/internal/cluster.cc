// The broker's side of a cluster (broker/cluster_link.h): telling the link
// which patterns this node's clients subscribe to, and emitting the events
// the link reports.

#include <utility>

#include "broker/internal/broker_core.h"
#include "broker/sys_topics.h"

namespace manifold::internal {

void BrokerCore::AttachCluster(ClusterLink* link) {
  // While a link is attached, routing takes the checked path, where queue
  // groups ask it who takes each message; without one, the fast path does
  // not ask.
  if (cluster_ != nullptr) --filtered_subscriptions_;
  if (link != nullptr) ++filtered_subscriptions_;
  cluster_ = link;
  cluster_interest_.clear();
  if (link == nullptr) return;
  index_.ForEach([this](const Subscription& sub) { CountInterest(sub, +1); });
}

void BrokerCore::CountInterest(const Subscription& sub, int delta) {
  std::pair<std::string, std::string> key(sub.pattern, sub.queue_group);
  if (delta > 0) {
    if (++cluster_interest_[key] == 1) {
      cluster_->OnLocalInterest(sub.pattern, sub.queue_group, /*added=*/true);
    }
    return;
  }
  auto it = cluster_interest_.find(key);
  if (it == cluster_interest_.end()) return;
  if (--it->second == 0) {
    cluster_interest_.erase(it);
    cluster_->OnLocalInterest(sub.pattern, sub.queue_group, /*added=*/false);
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
