// Permission check benchmarks: what one check costs a connection admitted
// with a PermissionSet of 1,000 rules (500 allow and 500 deny patterns per
// operation), for the literal topics of publishes, for subscription
// patterns, and for the receive filter of a subscription that overlaps denied
// topics; against trying the same patterns one by one.
//
//   bazel run -c opt //bench:permissions_bench
//
// The broker checks a publish only when its topic differs from the
// connection's last allowed one, so BM_CheckPublish (a new topic each time)
// is the worst case per message; a publisher repeating its topic pays a
// string comparison.

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "benchmark/benchmark.h"
#include "broker/permissions.h"
#include "core/topic.h"

namespace manifold {
namespace {

// `rules` patterns per operation, half allow and half deny, in the shape of
// per-tenant permissions: "tenant/<i>/**" and "tenant/<i>/device/*/status"
// allowed, "tenant/<i>/secret/**" and "tenant/<i>/*/audit" denied.
Permissions MakePermissions(int rules) {
  Permissions p;
  for (TopicRules* r : {p.mutable_publish(), p.mutable_subscribe()}) {
    for (int i = 0; i < rules / 2; ++i) {
      r->add_allow(i % 2 == 0 ? absl::StrCat("tenant/", i, "/**")
                              : absl::StrCat("tenant/", i, "/device/*/status"));
      r->add_deny(i % 2 == 0 ? absl::StrCat("tenant/", i, "/secret/**")
                             : absl::StrCat("tenant/", i, "/*/audit"));
    }
  }
  return p;
}

std::shared_ptr<const PermissionSet> MakeSet(int rules) {
  absl::StatusOr<std::shared_ptr<const PermissionSet>> set =
      PermissionSet::Compile(MakePermissions(rules));
  if (!set.ok()) abort();
  return *set;
}

// 64 literal topics spread over the tenants, most allowed, some denied.
std::vector<std::string> Topics(int rules) {
  std::vector<std::string> topics;
  for (int i = 0; i < 64; ++i) {
    const int tenant = (i * 7919) % (rules / 2);
    topics.push_back(
        i % 8 == 0 ? absl::StrCat("tenant/", tenant, "/secret/key")
                   : absl::StrCat("tenant/", tenant, "/device/", i, "/status"));
  }
  return topics;
}

void BM_CheckPublish(benchmark::State& state) {
  const int rules = static_cast<int>(state.range(0));
  const std::shared_ptr<const PermissionSet> set = MakeSet(rules);
  const std::vector<std::string> topics = Topics(rules);
  size_t i = 0;
  for (auto _ : state) {
    absl::Status s = set->Check(AccessOperation::kPublish, topics[i++ & 63]);
    benchmark::DoNotOptimize(s);
  }
  state.SetLabel(absl::StrCat(rules, " rules per operation"));
}
BENCHMARK(BM_CheckPublish)->Arg(10)->Arg(1000);

// The same question answered by trying every pattern with Matches(): what
// the trie in PatternSet saves.
void BM_CheckPublishOneByOne(benchmark::State& state) {
  const int rules = static_cast<int>(state.range(0));
  const Permissions p = MakePermissions(rules);
  const std::vector<std::string> topics = Topics(rules);
  size_t i = 0;
  for (auto _ : state) {
    const Segments topic = SplitTopic(topics[i++ & 63]);
    bool denied = false;
    for (const std::string& d : p.publish().deny()) {
      if (Matches(SplitTopic(d), topic)) {
        denied = true;
        break;
      }
    }
    bool allowed = false;
    if (!denied) {
      for (const std::string& a : p.publish().allow()) {
        if (Matches(SplitTopic(a), topic)) {
          allowed = true;
          break;
        }
      }
    }
    benchmark::DoNotOptimize(allowed);
  }
}
BENCHMARK(BM_CheckPublishOneByOne)->Arg(10)->Arg(1000);

// A subscription pattern: checked once per Subscribe.
void BM_CheckSubscribe(benchmark::State& state) {
  const int rules = static_cast<int>(state.range(0));
  const std::shared_ptr<const PermissionSet> set = MakeSet(rules);
  std::vector<std::string> patterns;
  for (int i = 0; i < 64; ++i) {
    patterns.push_back(
        absl::StrCat("tenant/", (i * 7919) % (rules / 2), "/device/*/status"));
  }
  size_t i = 0;
  for (auto _ : state) {
    absl::Status s =
        set->Check(AccessOperation::kSubscribe, patterns[i++ & 63]);
    benchmark::DoNotOptimize(s);
  }
}
BENCHMARK(BM_CheckSubscribe)->Arg(10)->Arg(1000);

// Per delivery to a subscription that overlaps denied topics ("**" under
// 1,000 rules overlaps all 500 deny patterns), for literal topics.
void BM_ReceiveFilterLiteral(benchmark::State& state) {
  const int rules = static_cast<int>(state.range(0));
  Permissions p;
  for (int i = 0; i < rules / 2; ++i) {
    p.mutable_subscribe()->add_deny(absl::StrCat("tenant/", i, "/secret/**"));
  }
  absl::StatusOr<std::shared_ptr<const PermissionSet>> set =
      PermissionSet::Compile(p);
  if (!set.ok()) abort();
  const std::shared_ptr<const PermissionSet::ReceiveFilter> filter =
      (*set)->FilterFor("**");
  const std::vector<std::string> topics = Topics(rules);
  size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(filter->Allows(topics[i++ & 63], "**"));
  }
}
BENCHMARK(BM_ReceiveFilterLiteral)->Arg(10)->Arg(1000);

}  // namespace
}  // namespace manifold
