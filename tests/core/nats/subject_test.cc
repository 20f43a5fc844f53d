// How NATS subjects and Manifold topics map onto each other.

#include "core/nats/subject.h"

#include <string>

#include "core/status.h"
#include "core/topic.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace manifold::nats {
namespace {

using ::testing::HasSubstr;

std::string ToTopic(absl::string_view subject,
                    SubjectUse use = SubjectUse::kSubscribe) {
  std::string topic;
  absl::Status s = SubjectToTopic(subject, use, topic);
  EXPECT_TRUE(s.ok()) << subject << ": " << s;
  return topic;
}

absl::Status ToTopicError(absl::string_view subject, SubjectUse use) {
  std::string topic;
  absl::Status s = SubjectToTopic(subject, use, topic);
  EXPECT_FALSE(s.ok()) << subject << " mapped to " << topic;
  return s;
}

std::string ToSubject(absl::string_view topic) {
  std::string subject = "prefix:";
  AppendSubjectForTopic(topic, subject);
  const std::string result = subject.substr(7);
  EXPECT_EQ(SubjectSizeForTopic(topic), result.size()) << topic;
  std::string written(result.size(), '?');
  EXPECT_EQ(WriteSubjectForTopic(topic, written.data()),
            written.data() + written.size());
  EXPECT_EQ(written, result);
  return result;
}

TEST(NatsSubjectTest, DotsBecomeSlashes) {
  EXPECT_EQ(ToTopic("orders", SubjectUse::kPublish), "orders");
  EXPECT_EQ(ToTopic("orders.eu.42", SubjectUse::kPublish), "orders/eu/42");
  EXPECT_EQ(ToTopic("_INBOX.abc.1", SubjectUse::kReply), "_INBOX/abc/1");
}

TEST(NatsSubjectTest, WildcardsMapToManifoldWildcards) {
  EXPECT_EQ(ToTopic("orders.*"), "orders/*");
  EXPECT_EQ(ToTopic("*.eu.*"), "*/eu/*");
  EXPECT_EQ(ToTopic("orders.>"), "orders/*/**");
  EXPECT_EQ(ToTopic(">"), "*/**");
  EXPECT_EQ(ToTopic("a.*.>"), "a/*/*/**");
  // Mapped patterns are valid Manifold patterns and match as NATS would.
  EXPECT_TRUE(ValidateTopic(ToTopic("a.*.>"), TopicRole::kSubscription).ok());
  EXPECT_TRUE(Matches(ToTopic("orders.>"), "orders/eu"));
  EXPECT_TRUE(Matches(ToTopic("orders.>"), "orders/eu/42"));
  EXPECT_FALSE(Matches(ToTopic("orders.>"), "orders"));  // > needs one token
  EXPECT_FALSE(Matches(ToTopic("orders.*"), "orders/eu/42"));
}

TEST(NatsSubjectTest, DoubleSlashInATokenIsADotInASegment) {
  EXPECT_EQ(ToTopic("spBv1//0.plant", SubjectUse::kPublish), "spBv1.0/plant");
  EXPECT_EQ(ToTopic("a////b", SubjectUse::kPublish), "a..b");
  EXPECT_EQ(ToTopic("//", SubjectUse::kPublish), ".");
}

TEST(NatsSubjectTest, SubjectsWithoutAManifoldFormAreRejected) {
  struct Case {
    const char* subject;
    const char* why;
  };
  for (const Case& c : {
           Case{"", "is empty"},
           Case{"a..b", "empty token at 2"},
           Case{".a", "empty token at 1"},
           Case{"a.", "empty token at 2"},
           Case{"a.>.b", "'>' at token 2; it may only be the last token"},
           Case{"a/b", "'/' in token 1"},
           Case{"a.b///c", "'/' in token 2"},
           Case{"a.**", "token '**' at 2, which has no Manifold form"},
       }) {
    absl::Status s = ToTopicError(c.subject, SubjectUse::kSubscribe);
    EXPECT_EQ(WireCode(s), wire::INVALID_PATTERN) << c.subject;
    EXPECT_THAT(s.message(), HasSubstr(c.why)) << c.subject;
    EXPECT_EQ(WireCode(ToTopicError(c.subject, SubjectUse::kPublish)),
              wire::INVALID_TOPIC);
  }
}

TEST(NatsSubjectTest, PublishAndReplySubjectsMustBeLiteral) {
  for (const char* subject : {"a.*", "*", "a.>", ">"}) {
    absl::Status s = ToTopicError(subject, SubjectUse::kPublish);
    EXPECT_EQ(WireCode(s), wire::INVALID_TOPIC);
    EXPECT_THAT(s.message(), HasSubstr("publish subject must be literal"));
    s = ToTopicError(subject, SubjectUse::kReply);
    EXPECT_THAT(s.message(), HasSubstr("reply subject must be literal"));
  }
}

TEST(NatsSubjectTest, OtherCharactersAreLeftForTopicValidation) {
  // NATS literals that Manifold rejects are caught by ValidateTopic, in the
  // broker, with the same codes.
  const std::string topic = ToTopic("a.b*", SubjectUse::kPublish);
  EXPECT_EQ(topic, "a/b*");
  EXPECT_EQ(WireCode(ValidateTopic(topic, TopicRole::kPublish)),
            wire::INVALID_TOPIC);
  EXPECT_EQ(ToTopic("a>b.caf\xc3\xa9", SubjectUse::kPublish),
            "a>b/caf\xc3\xa9");
}

TEST(NatsSubjectTest, TopicsMapBackToSubjects) {
  EXPECT_EQ(ToSubject("orders"), "orders");
  EXPECT_EQ(ToSubject("orders/eu/42"), "orders.eu.42");
  EXPECT_EQ(ToSubject("spBv1.0/plant"), "spBv1//0.plant");
  EXPECT_EQ(ToSubject("room/*"), "room.*");
  EXPECT_EQ(ToSubject("room/*/**"), "room.>");
  EXPECT_EQ(ToSubject("*/**"), ">");
  // No exact NATS form: approximations documented in subject.h.
  EXPECT_EQ(ToSubject("a/**"), "a.>");
  EXPECT_EQ(ToSubject("**/status"), ">.status");
  EXPECT_EQ(ToSubject("a/>"), "a.>");
}

TEST(NatsSubjectTest, EverySubjectThatMapsMapsBackToItself) {
  for (const char* subject :
       {"a", "a.b.c", "a.*", "a.*.>", ">", "*", "x//y.z", "//", "_INBOX.q.7",
        "a>b", "$SYS.x", "caf\xc3\xa9.t"}) {
    EXPECT_EQ(ToSubject(ToTopic(subject)), subject);
  }
}

TEST(NatsSubjectTest, EveryLiteralTopicMapsToNatsAndBack) {
  for (const char* topic : {"a", "a/b.c/d", "v1.2.3", "$sys/stats", "x/y"}) {
    EXPECT_EQ(ToTopic(ToSubject(topic), SubjectUse::kPublish), topic);
  }
}

}  // namespace
}  // namespace manifold::nats
