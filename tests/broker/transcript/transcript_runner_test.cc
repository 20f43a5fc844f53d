#include "broker/transcript/transcript_runner.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace manifold {
namespace {

using ::testing::HasSubstr;

TEST(TranscriptRunnerTest, ParseErrorsNameTheLine) {
  absl::StatusOr<transcript::Transcript> t = ParseTranscript(
      "step { connect { client: \"a\" } }\nstep { bogus {} }\n");
  ASSERT_FALSE(t.ok());
  EXPECT_THAT(t.status().message(), HasSubstr("line 2"));
}

// A minimal broker config that makes Welcome carry only version and id.
constexpr char kPlainBroker[] =
    "broker { keepalive_interval_ms: 0 server_name: \"\" }\n";

absl::Status RunPlain(absl::string_view body) {
  absl::StatusOr<transcript::Transcript> t =
      ParseTranscript(absl::StrCat(kPlainBroker, body));
  if (!t.ok()) return t.status();
  return ReplayTranscript(*t);
}

TEST(TranscriptRunnerTest, VariablesCaptureAndSubstitute) {
  absl::Status s = RunPlain(R"pb(
    step { connect { client: "b" } }
    step {
      send {
        client: "b"
        message { hello { protocol_version: 1 } }
      }
    }
    step {
      expect {
        client: "b"
        message {
          welcome {
            protocol_version: 1
            max_payload_bytes: 1048576
            max_frame_bytes: 1114112
          }
        }
        set { field: "welcome.session_id" var: "s" }
      }
    }
    step {
      send {
        client: "b"
        message { subscribe { op_id: 1 pattern: "t" } }
      }
    }
    step {
      expect {
        client: "b"
        message { ack { op_id: 1 } }
        set { field: "ack.subscription_id" var: "sub" }
      }
    }
    step {
      send {
        client: "b"
        message { publish { topic: "t" payload: "x" } }
      }
    }
    step {
      expect {
        client: "b"
        message { deliver { topic: "t" payload: "x" } }
        get { field: "deliver.subscription_id" var: "sub" }
      }
    }
    step {
      send {
        client: "b"
        message { unsubscribe { op_id: 2 } }
        get { field: "unsubscribe.subscription_id" var: "sub" }
      }
    }
    step {
      expect {
        client: "b"
        message { ack { op_id: 2 } }
      }
    }
    step {
      send {
        client: "b"
        message { publish { topic: "t" payload: "y" } }
      }
    }
    step { expect_nothing { client: "b" } }
  )pb");
  EXPECT_TRUE(s.ok()) << s.message();
}

constexpr char kTwoClients[] = R"pb(
  step { connect { client: "a" } }
  step {
    send {
      client: "a"
      message { hello { protocol_version: 1 } }
    }
  }
  step {
    expect {
      client: "a"
      message {
        welcome {
          protocol_version: 1
          session_id: 1
          max_payload_bytes: 1048576
          max_frame_bytes: 1114112
        }
      }
    }
  }
  step { connect { client: "b" } }
  step {
    send {
      client: "b"
      message { hello { protocol_version: 1 } }
    }
  }
  step {
    expect {
      client: "b"
      message {
        welcome {
          protocol_version: 1
          session_id: 2
          max_payload_bytes: 1048576
          max_frame_bytes: 1114112
        }
      }
    }
  }
  step {
    send {
      client: "b"
      message { subscribe { op_id: 1 pattern: "t" } }
    }
  }
  step {
    expect {
      client: "b"
      message { ack { op_id: 1 subscription_id: 1 } }
    }
  }
)pb";

TEST(TranscriptRunnerTest, MatchingTranscriptPasses) {
  absl::Status s = RunPlain(absl::StrCat(kTwoClients, R"pb(
    step {
      send {
        client: "a"
        message { publish { topic: "t" payload: "hi" } }
      }
    }
    step {
      expect {
        client: "b"
        message { deliver { subscription_id: 1 topic: "t" payload: "hi" } }
      }
    }
  )pb"));
  EXPECT_TRUE(s.ok()) << s.message();
}

TEST(TranscriptRunnerTest, MismatchReportsStepExpectedReceivedAndDifference) {
  absl::Status s = RunPlain(absl::StrCat(kTwoClients, R"pb(
    step {
      send {
        client: "a"
        message { publish { topic: "t" payload: "hi" } }
      }
    }
    step {
      expect {
        client: "b"
        message { deliver { subscription_id: 1 topic: "t" payload: "bye" } }
      }
      note: "b hears a"
    }
  )pb"));
  ASSERT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(s.message(), HasSubstr("step 10 of 10: expect"));
  EXPECT_THAT(s.message(), HasSubstr("(b hears a)"));
  EXPECT_THAT(s.message(), HasSubstr("expected:\n    deliver {"));
  EXPECT_THAT(s.message(), HasSubstr("payload: \"bye\""));
  EXPECT_THAT(s.message(), HasSubstr("received:\n    deliver {"));
  EXPECT_THAT(s.message(),
              HasSubstr("modified: deliver.payload: \"bye\" -> \"hi\""));
}

TEST(TranscriptRunnerTest, MissingMessageIsReported) {
  absl::Status s = RunPlain(absl::StrCat(kTwoClients, R"pb(
    step {
      expect {
        client: "a"
        message { pong { op_id: 1 } }
      }
    }
  )pb"));
  EXPECT_THAT(s.message(), HasSubstr("client 'a' received nothing"));
}

TEST(TranscriptRunnerTest, UnexpectedLeftoverOutputFailsAtTheEnd) {
  absl::Status s = RunPlain(absl::StrCat(kTwoClients, R"pb(
    step {
      send {
        client: "a"
        message { publish { topic: "t" payload: "hi" } }
      }
    }
  )pb"));
  EXPECT_THAT(s.message(), HasSubstr("at the end, client 'b' has"));
  EXPECT_THAT(s.message(), HasSubstr("payload: \"hi\""));
}

TEST(TranscriptRunnerTest, UnorderedExpectationsMatchAnyOrder) {
  absl::Status s = RunPlain(absl::StrCat(kTwoClients, R"pb(
    step {
      send {
        client: "b"
        message { subscribe { op_id: 2 pattern: "*" } }
      }
    }
    step {
      expect {
        client: "b"
        message { ack { op_id: 2 subscription_id: 2 } }
      }
    }
    step {
      send {
        client: "a"
        message { publish { topic: "t" payload: "x" } }
      }
    }
    step {
      expect_unordered {
        client: "b"
        messages { deliver { subscription_id: 2 topic: "t" payload: "x" } }
        messages { deliver { subscription_id: 1 topic: "t" payload: "x" } }
      }
    }
  )pb"));
  EXPECT_TRUE(s.ok()) << s.message();
}

TEST(TranscriptRunnerTest, ExpectClosedChecksTheCode) {
  absl::Status ok = RunPlain(R"pb(
    step { connect { client: "bad" } }
    step {
      send { client: "bad" raw: "\377\377\377\377\377\377\377\377\377\377\377" }
    }
    step {
      expect {
        client: "bad"
        message {
          error {
            code: BAD_LENGTH_PREFIX
            message: "frame length prefix is not a valid varint"
            fatal: true
          }
        }
      }
    }
    step { expect_closed { client: "bad" code: BAD_LENGTH_PREFIX } }
  )pb");
  EXPECT_TRUE(ok.ok()) << ok.message();
  absl::Status wrong = RunPlain(R"pb(
    step { connect { client: "bad" } }
    step {
      send { client: "bad" raw: "\377\377\377\377\377\377\377\377\377\377\377" }
    }
    step {
      expect {
        client: "bad"
        message {
          error {
            code: BAD_LENGTH_PREFIX
            message: "frame length prefix is not a valid varint"
            fatal: true
          }
        }
      }
    }
    step { expect_closed { client: "bad" code: SLOW_CONSUMER } }
  )pb");
  EXPECT_THAT(wrong.message(), HasSubstr("closed with BAD_LENGTH_PREFIX"));
}

TEST(TranscriptRunnerTest, MalformedTranscriptsAreInvalidArguments) {
  EXPECT_EQ(
      RunPlain(R"pb(step { send { client: "ghost" raw: "x" } })pb").code(),
      absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(RunPlain(R"pb(
                step { connect { client: "a" } }
                step {
                  send {
                    client: "a"
                    message { unsubscribe {} }
                    get { field: "unsubscribe.subscription_id" var: "nope" }
                  }
                }
              )pb")
                  .message(),
              HasSubstr("variable 'nope' is used before it is set"));
  EXPECT_THAT(RunPlain(R"pb(
                step { connect { client: "a" } }
                step { connect { client: "a" } }
              )pb")
                  .message(),
              HasSubstr("already exists"));
}

TEST(TranscriptRunnerTest, TextRoundTrips) {
  absl::StatusOr<transcript::Transcript> t =
      ParseTranscript(absl::StrCat(kPlainBroker, kTwoClients));
  ASSERT_TRUE(t.ok());
  absl::StatusOr<transcript::Transcript> again =
      ParseTranscript(TranscriptToText(*t));
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->SerializeAsString(), t->SerializeAsString());
}

}  // namespace
}  // namespace manifold
