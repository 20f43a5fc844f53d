#include "broker/permissions.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "core/status.h"

namespace manifold {
namespace {

bool HasWildcardSegment(const Segments& segments) {
  for (absl::string_view s : segments) {
    if (KindOf(s) != SegmentKind::kLiteral) return true;
  }
  return false;
}

// How an error names an operation on a topic: "publish to 'a/b'".
std::string Describe(AccessOperation operation, absl::string_view topic) {
  constexpr size_t kMaxShown = 128;
  const absl::string_view shown = topic.substr(0, kMaxShown);
  const absl::string_view more = topic.size() > kMaxShown ? "..." : "";
  return operation == AccessOperation::kServe
             ? absl::StrCat("serve '", shown, more, "'")
             : absl::StrCat(AccessOperationName(operation), " to '", shown,
                            more, "'");
}

}  // namespace

absl::string_view AccessOperationName(AccessOperation operation) {
  switch (operation) {
    case AccessOperation::kPublish:
      return "publish";
    case AccessOperation::kSubscribe:
      return "subscribe";
    case AccessOperation::kServe:
      return "serve";
    case AccessOperation::kRequest:
      return "request";
  }
  return "operation";
}

// ---------------------------------------------------------------------------
// ReceiveFilter

PermissionSet::ReceiveFilter::ReceiveFilter(std::vector<std::string> denied)
    : denied_(std::move(denied)) {
  for (const std::string& d : denied_) denied_set_.Add(d);
}

bool PermissionSet::ReceiveFilter::Allows(
    absl::string_view topic, absl::string_view subscription) const {
  const Segments t = SplitTopic(topic);
  if (!HasWildcardSegment(t)) return !denied_set_.MatchesTopic(t);
  // A message published to a pattern stands for every topic it shares with
  // the subscription; none of them may be denied.
  return !denied_set_.IntersectsBoth(t, SplitTopic(subscription));
}

// ---------------------------------------------------------------------------
// PermissionSet

absl::StatusOr<std::shared_ptr<const PermissionSet>> PermissionSet::Compile(
    const Permissions& permissions, const TopicLimits& limits) {
  std::shared_ptr<PermissionSet> set(new PermissionSet());
  set->source_ = permissions;
  set->read_sys_ = permissions.read_sys();
  struct Part {
    AccessOperation operation;
    bool present;
    const TopicRules* rules;
    Rules* out;
  };
  const Part parts[] = {
      {AccessOperation::kPublish, permissions.has_publish(),
       &permissions.publish(), &set->publish_},
      {AccessOperation::kSubscribe, permissions.has_subscribe(),
       &permissions.subscribe(), &set->subscribe_},
      {AccessOperation::kServe, permissions.has_serve(), &permissions.serve(),
       &set->serve_},
      {AccessOperation::kRequest, permissions.has_request(),
       &permissions.request(), &set->request_},
  };
  for (const Part& part : parts) {
    if (!part.present) continue;
    const auto add = [&](absl::string_view list, absl::string_view pattern,
                         PatternSet& into) -> absl::Status {
      if (absl::Status s =
              ValidateTopic(pattern, TopicRole::kSubscription, limits);
          !s.ok()) {
        return absl::InvalidArgumentError(absl::StrCat(
            AccessOperationName(part.operation), " ", list, ": ", s.message()));
      }
      into.Add(pattern);
      return absl::OkStatus();
    };
    for (const std::string& p : part.rules->allow()) {
      if (absl::Status s = add("allow", p, part.out->allow); !s.ok()) return s;
    }
    for (const std::string& p : part.rules->deny()) {
      if (absl::Status s = add("deny", p, part.out->deny); !s.ok()) return s;
    }
  }
  return std::shared_ptr<const PermissionSet>(std::move(set));
}

const PermissionSet::Rules& PermissionSet::RulesFor(
    AccessOperation operation) const {
  switch (operation) {
    case AccessOperation::kPublish:
      return publish_;
    case AccessOperation::kSubscribe:
      return subscribe_;
    case AccessOperation::kServe:
      return serve_;
    case AccessOperation::kRequest:
    default:
      return request_;
  }
}

bool PermissionSet::Allowed(AccessOperation operation,
                            absl::string_view topic) const {
  if (IsReserved(topic)) {
    // The broker's own topics: only read_sys decides (publishing and serving
    // there is refused before permissions are asked).
    return read_sys_ && (operation == AccessOperation::kSubscribe ||
                         operation == AccessOperation::kRequest);
  }
  const Rules& rules = RulesFor(operation);
  if (rules.empty()) return true;
  switch (operation) {
    case AccessOperation::kPublish:
      // Every topic it reaches must be allowed, and none denied.
      if (rules.deny.IntersectsPattern(topic)) return false;
      return rules.allow.empty() || rules.allow.CoversPattern(topic);
    case AccessOperation::kSubscribe:
      // Refused only when all of it is denied; an overlap is filtered at
      // delivery (FilterFor).
      if (rules.deny.CoversPattern(topic)) return false;
      return rules.allow.empty() || rules.allow.CoversPattern(topic);
    case AccessOperation::kServe:
    case AccessOperation::kRequest:
    default:
      if (rules.deny.MatchesTopic(topic)) return false;
      return rules.allow.empty() || rules.allow.MatchesTopic(topic);
  }
}

absl::Status PermissionSet::Check(AccessOperation operation,
                                  absl::string_view topic) const {
  if (Allowed(operation, topic)) return absl::OkStatus();
  return ProtocolError(
      wire::PERMISSION_DENIED,
      absl::StrCat("permission denied: ", Describe(operation, topic)));
}

std::shared_ptr<const PermissionSet::ReceiveFilter> PermissionSet::FilterFor(
    absl::string_view pattern) const {
  if (subscribe_.deny.empty() || IsReserved(pattern)) return nullptr;
  std::vector<std::string> overlapping = subscribe_.deny.Intersecting(pattern);
  if (overlapping.empty()) return nullptr;
  return std::make_shared<const ReceiveFilter>(std::move(overlapping));
}

}  // namespace manifold
