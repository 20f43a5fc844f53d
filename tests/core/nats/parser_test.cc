// The NATS client-protocol parser: every command, every error, and the same
// result however the input is split.

#include "core/nats/parser.h"

#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/nats/errors.h"
#include "core/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace manifold::nats {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// Parses `input`, which must hold exactly one command.
Command ParseOne(absl::string_view input, ParseLimits limits = ParseLimits()) {
  Command command;
  absl::StatusOr<size_t> used = ParseCommand(input, limits, command);
  EXPECT_TRUE(used.ok()) << used.status();
  if (used.ok()) {
    EXPECT_EQ(*used, input.size()) << input;
  }
  return command;
}

absl::Status ParseError(absl::string_view input,
                        ParseLimits limits = ParseLimits()) {
  Command command;
  absl::StatusOr<size_t> used = ParseCommand(input, limits, command);
  EXPECT_FALSE(used.ok()) << "parsed " << input;
  return used.ok() ? absl::OkStatus() : used.status();
}

// A readable, complete description of a command, for comparing runs.
std::string Describe(const Command& c) {
  return absl::StrCat(CommandName(c.kind), "|", c.subject, "|", c.reply_to, "|",
                      c.queue_group, "|", c.sid, "|",
                      c.has_max_messages ? absl::StrCat(c.max_messages) : "-",
                      "|", c.header_block, "|", c.payload, "|", c.arguments);
}

// Feeds `stream` to the parser in the given pieces, as a connection would:
// bytes are appended to a buffer and parsed until the parser needs more.
// Returns one line per command, and the error (if any) as the last line.
std::vector<std::string> ParseStream(absl::string_view stream,
                                     const std::vector<size_t>& pieces,
                                     ParseLimits limits = ParseLimits()) {
  std::vector<std::string> out;
  std::string buffer;
  size_t at = 0;
  for (size_t piece : pieces) {
    absl::StrAppend(&buffer, stream.substr(at, piece));
    at += piece;
    while (true) {
      Command command;
      absl::StatusOr<size_t> used = ParseCommand(buffer, limits, command);
      if (!used.ok()) {
        out.push_back(absl::StrCat("error ", CodeName(WireCode(used.status())),
                                   " '", NatsErrorText(used.status()), "'"));
        return out;
      }
      if (*used == 0) break;
      out.push_back(Describe(command));
      buffer.erase(0, *used);
    }
  }
  if (!buffer.empty()) out.push_back(absl::StrCat("partial ", buffer.size()));
  return out;
}

std::vector<size_t> Whole(absl::string_view s) { return {s.size()}; }
std::vector<size_t> ByteByByte(absl::string_view s) {
  return std::vector<size_t>(s.size(), 1);
}
std::vector<size_t> RandomSplits(absl::string_view s, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<size_t> pieces;
  size_t left = s.size();
  while (left > 0) {
    const size_t n = std::min<size_t>(left, 1 + rng() % 17);
    pieces.push_back(n);
    left -= n;
  }
  return pieces;
}

// A session with every command a client sends, in assorted spellings.
const char kSession[] =
    "CONNECT {\"verbose\":false,\"headers\":true}\r\n"
    "PING\r\n"
    "pong\r\n"
    "SUB foo.* 1\r\n"
    "SUB  foo.>\tworkers   2\r\n"
    "PUB foo.bar 5\r\nhello\r\n"
    "PUB foo.bar _INBOX.x.1 0\r\n\r\n"
    "HPUB foo.bar 24 29\r\nNATS/1.0\r\nA: b\r\nC: d\r\n\r\nworld\r\n"
    "HPUB foo.bar reply 12 12\r\nNATS/1.0\r\n\r\n\r\n"
    "PUB bin 4\r\n\r\n\r\n\r\n"
    "UNSUB 1\r\n"
    "UNSUB 2 10\r\n"
    "INFO {}\n"
    "PING\n";

TEST(NatsParserTest, ParsesEveryClientCommand) {
  std::vector<std::string> got = ParseStream(kSession, Whole(kSession));
  EXPECT_THAT(
      got,
      ElementsAre("CONNECT|||||-|||{\"verbose\":false,\"headers\":true}",
                  "PING|||||-|||", "PONG|||||-|||", "SUB|foo.*|||1|-|||",
                  "SUB|foo.>||workers|2|-|||", "PUB|foo.bar||||-||hello|",
                  "PUB|foo.bar|_INBOX.x.1|||-|||",
                  "HPUB|foo.bar||||-|NATS/1.0\r\nA: b\r\nC: d\r\n\r\n|world|",
                  "HPUB|foo.bar|reply|||-|NATS/1.0\r\n\r\n||",
                  "PUB|bin||||-||\r\n\r\n|", "UNSUB||||1|-|||",
                  "UNSUB||||2|10|||", "INFO|||||-|||{}", "PING|||||-|||"));
}

TEST(NatsParserTest, ByteByByteAndRandomSplitsGiveTheSameCommands) {
  const std::vector<std::string> whole = ParseStream(kSession, Whole(kSession));
  EXPECT_EQ(ParseStream(kSession, ByteByByte(kSession)), whole);
  for (uint32_t seed = 1; seed <= 200; ++seed) {
    EXPECT_EQ(ParseStream(kSession, RandomSplits(kSession, seed)), whole)
        << "seed " << seed;
  }
}

TEST(NatsParserTest, ErrorsAreTheSameHoweverTheInputIsSplit) {
  const std::string streams[] = {
      "PING\r\nPUB a 3\r\nabcXY",  // payload not followed by CRLF
      "PING\r\nFOO bar\r\n",       // unknown operation
      "SUB a\r\n",                 // too few fields
      "PUB a 2000000\r\n",         // payload too large
      std::string("PUB ") + std::string(5000, 'a') + " 1\r\n",  // long line
      "HPUB a 10 5\r\n",  // header size > total
  };
  for (const std::string& s : streams) {
    const std::vector<std::string> whole = ParseStream(s, Whole(s));
    ASSERT_FALSE(whole.empty());
    EXPECT_THAT(whole.back(), HasSubstr("error")) << s;
    EXPECT_EQ(ParseStream(s, ByteByByte(s)), whole) << s;
    for (uint32_t seed = 1; seed <= 20; ++seed) {
      EXPECT_EQ(ParseStream(s, RandomSplits(s, seed)), whole) << s;
    }
  }
}

TEST(NatsParserTest, IncompleteInputAsksForMore) {
  for (absl::string_view partial :
       {"", "P", "PIN", "PING", "PING\r", "PUB a 5\r\n", "PUB a 5\r\nhel",
        "PUB a 5\r\nhello", "PUB a 5\r\nhello\r", "HPUB a 12 12\r\nNATS/1.0",
        "CONNECT {}"}) {
    Command command;
    absl::StatusOr<size_t> used = ParseCommand(partial, ParseLimits(), command);
    ASSERT_TRUE(used.ok()) << partial << ": " << used.status();
    EXPECT_EQ(*used, 0u) << partial;
  }
}

TEST(NatsParserTest, TakesOnlyTheFirstCommand) {
  Command command;
  absl::StatusOr<size_t> used =
      ParseCommand("PUB a 1\r\nx\r\nPING\r\n", ParseLimits(), command);
  ASSERT_TRUE(used.ok());
  EXPECT_EQ(*used, 12u);
  EXPECT_EQ(command.payload, "x");
}

TEST(NatsParserTest, OperationNamesAreCaseInsensitive) {
  EXPECT_EQ(ParseOne("pInG\r\n").kind, CommandKind::kPing);
  EXPECT_EQ(ParseOne("Sub a 1\r\n").kind, CommandKind::kSub);
  EXPECT_EQ(ParseOne("hpub a 12 12\r\nNATS/1.0\r\n\r\n\r\n").kind,
            CommandKind::kHpub);
}

TEST(NatsParserTest, PayloadMayHoldLineBreaksAndAnyByte) {
  const std::string payload("a\r\nb\0\xff", 6);
  const std::string input = absl::StrCat("PUB t 6\r\n", payload, "\r\n");
  Command c = ParseOne(input);
  EXPECT_EQ(c.payload, payload);
}

TEST(NatsParserTest, LeadingZerosInSizesAreAccepted) {
  EXPECT_EQ(ParseOne("PUB a 002\r\nhi\r\n").payload, "hi");
}

TEST(NatsParserTest, UnknownOperationIsUnknownProtocolOperation) {
  for (absl::string_view input : {"FOO\r\n", "MSG a 1 2\r\n", "+OK\r\n",
                                  "PINGX\r\n", " PING\r\n", "\r\n"}) {
    absl::Status s = ParseError(input);
    EXPECT_EQ(WireCode(s), wire::MALFORMED_MESSAGE) << input;
    EXPECT_EQ(NatsErrorText(s), kUnknownProtocolOperation) << input;
  }
}

TEST(NatsParserTest, PayloadMustEndWithCrLf) {
  absl::Status s = ParseError("PUB a 2\r\nhiXX");
  EXPECT_EQ(NatsErrorText(s), kUnknownProtocolOperation);
  EXPECT_THAT(s.message(), HasSubstr("instead of"));
  EXPECT_FALSE(ParseError("PUB a 2\r\nhi\n\r").ok());
}

TEST(NatsParserTest, MalformedArgumentsAreParserErrors) {
  for (absl::string_view input :
       {"PUB\r\n",          "PUB a\r\n",
        "PUB a b c 1\r\n",  "PUB a x\r\n",
        "PUB a -1\r\n",     "PUB a +2\r\n",
        "PUB a 1x\r\n",     "PUB a 99999999999999999999\r\n",
        "HPUB a 5\r\n",     "HPUB a 1 x\r\n",
        "HPUB a 13 12\r\n", "SUB\r\n",
        "SUB a\r\n",        "SUB a q 1 2\r\n",
        "UNSUB\r\n",        "UNSUB 1 x\r\n",
        "UNSUB 1 2 3\r\n",  "CONNECT\r\n",
        "CONNECT   \r\n",   "PING x\r\n",
        "PONG 1\r\n",       "INFO\r\n"}) {
    absl::Status s = ParseError(input);
    EXPECT_EQ(WireCode(s), wire::INVALID_ARGUMENT) << input << ": " << s;
    EXPECT_EQ(NatsErrorText(s), kParserError) << input;
  }
}

TEST(NatsParserTest, ErrorMessagesNameTheProblem) {
  EXPECT_THAT(ParseError("PUB a x\r\n").message(),
              HasSubstr("PUB size \"x\" is not a decimal number"));
  EXPECT_THAT(ParseError("SUB a\r\n").message(),
              HasSubstr("SUB takes <subject> [queue group] <sid>; got 1"));
  EXPECT_THAT(ParseError("FOO\r\n").message(),
              HasSubstr("operation \"FOO\" is unknown"));
  EXPECT_THAT(ParseError("HPUB a 13 12\r\n").message(),
              HasSubstr("header size 13 exceeds its total size 12"));
}

TEST(NatsParserTest, PayloadOverTheLimitFailsBeforeThePayloadArrives) {
  ParseLimits limits;
  limits.max_payload_bytes = 10;
  EXPECT_EQ(ParseOne("PUB a 10\r\n0123456789\r\n", limits).payload.size(), 10u);
  absl::Status s = ParseError("PUB a 11\r\n", limits);
  EXPECT_EQ(WireCode(s), wire::PAYLOAD_TOO_LARGE);
  EXPECT_EQ(NatsErrorText(s), kMaximumPayloadViolation);
  EXPECT_THAT(s.message(), HasSubstr("announces 11 bytes; the limit is 10"));
  // For HPUB the limit is on the total, headers included.
  EXPECT_EQ(NatsErrorText(ParseError("HPUB a 5 11\r\n", limits)),
            kMaximumPayloadViolation);
}

TEST(NatsParserTest, CommandOverTheOperationLimitIsAPayloadViolation) {
  ParseLimits limits;
  limits.max_command_bytes = 20;
  EXPECT_EQ(ParseOne("PUB a 9\r\n123456789\r\n", limits).payload.size(), 9u);
  absl::Status s = ParseError("PUB a 10\r\n", limits);
  EXPECT_EQ(NatsErrorText(s), kMaximumPayloadViolation);
}

TEST(NatsParserTest, ControlLineOverTheLimitFailsBeforeItEnds) {
  ParseLimits limits;
  limits.max_control_line_bytes = 16;
  // 16 bytes of line and its end fit.
  EXPECT_EQ(ParseOne("SUB abcdefghij 1\r\n", limits).sid, "1");
  // A line with no end within 16 + 2 bytes fails without waiting for it.
  const std::string endless = "SUB abcdefghijk 1";  // 17 bytes, no end yet
  Command command;
  EXPECT_EQ(*ParseCommand(endless, limits, command), 0u);
  absl::Status s = ParseError(endless + "\r", limits);
  EXPECT_EQ(WireCode(s), wire::FRAME_TOO_LARGE);
  EXPECT_EQ(NatsErrorText(s), kMaximumControlLineExceeded);
  // A complete line over the limit fails too.
  EXPECT_EQ(NatsErrorText(ParseError(endless + "\n", limits)),
            kMaximumControlLineExceeded);
  // The default is NATS's 4 KiB.
  EXPECT_EQ(NatsErrorText(ParseError(std::string(4098, 'A'))),
            kMaximumControlLineExceeded);
}

// --- Header blocks ---------------------------------------------------------

std::vector<std::string> Headers(absl::string_view block) {
  std::vector<std::string> out;
  absl::Status s = ParseHeaderBlock(
      block, [&out](absl::string_view key, absl::string_view value) {
        out.push_back(absl::StrCat(key, "=", value));
      });
  if (!s.ok()) out.push_back(absl::StrCat("error: ", s.message()));
  return out;
}

TEST(NatsHeaderBlockTest, ParsesKeysAndValuesInOrder) {
  EXPECT_THAT(Headers("NATS/1.0\r\nA: 1\r\nB:2\r\nA:  3 \t\r\nEmpty:\r\n\r\n"),
              ElementsAre("A=1", "B=2", "A=3", "Empty="));
  EXPECT_THAT(Headers("NATS/1.0\r\n\r\n"), ElementsAre());
  EXPECT_THAT(Headers("NATS/1.0\r\nUrl: http://x:8/y\r\n\r\n"),
              ElementsAre("Url=http://x:8/y"));
}

TEST(NatsHeaderBlockTest, StatusLineBecomesStatusAndDescription) {
  EXPECT_THAT(Headers("NATS/1.0 503\r\n\r\n"), ElementsAre("Status=503"));
  EXPECT_THAT(Headers("NATS/1.0 408 Request Timeout\r\nK: v\r\n\r\n"),
              ElementsAre("Status=408", "Description=Request Timeout", "K=v"));
}

TEST(NatsHeaderBlockTest, AnEmptyBlockHoldsNoHeaders) {
  // HPUB with a header size of 0, as nats.js jetstream().publish() sends.
  EXPECT_TRUE(Headers("").empty());
  EXPECT_TRUE(
      ParseHeaderBlock("", [](absl::string_view, absl::string_view) {}).ok());
}

TEST(NatsHeaderBlockTest, MalformedBlocksAreParserErrors) {
  for (absl::string_view block :
       {"NATS/2.0\r\n\r\n", "HTTP/1.0\r\n\r\n", "NATS/1.0\r\n",
        "NATS/1.0\r\nK: v\r\n", "NATS/1.0\r\nno colon\r\n\r\n",
        "NATS/1.0\r\n: v\r\n\r\n", "NATS/1.0\r\n\r\nK: v\r\n\r\n",
        "NATS/1.0 5\r\n\r\n", "NATS/1.0 50x\r\n\r\n", "NATS/1.0x\r\n\r\n",
        "NATS/1.0 5030\r\n\r\n"}) {
    absl::Status s =
        ParseHeaderBlock(block, [](absl::string_view, absl::string_view) {});
    EXPECT_EQ(WireCode(s), wire::INVALID_ARGUMENT) << block;
    EXPECT_EQ(NatsErrorText(s), kParserError) << block;
  }
}

// --- CONNECT -----------------------------------------------------------------

TEST(NatsConnectTest, ReadsTheFieldsClientsSend) {
  absl::StatusOr<ConnectOptions> o = ParseConnectOptions(
      R"({"verbose":false,"pedantic":false,"tls_required":false,)"
      R"("name":"svc-1","lang":"nats.js","version":"2.19.0","protocol":1,)"
      R"("echo":false,"headers":true,"no_responders":true,)"
      R"("user":"u","pass":"p","auth_token":"t","jwt":"j","sig":"s",)"
      R"("some_future_field":{"x":[1,2]}})");
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_FALSE(o->verbose);
  EXPECT_FALSE(o->pedantic);
  EXPECT_FALSE(o->echo);
  EXPECT_TRUE(o->headers);
  EXPECT_TRUE(o->no_responders);
  EXPECT_EQ(o->protocol, 1);
  EXPECT_EQ(o->name, "svc-1");
  EXPECT_EQ(o->lang, "nats.js");
  EXPECT_EQ(o->user, "u");
  EXPECT_EQ(o->pass, "p");
  EXPECT_EQ(o->auth_token, "t");
}

TEST(NatsConnectTest, AbsentFlagsTakeNatsServerDefaults) {
  absl::StatusOr<ConnectOptions> o = ParseConnectOptions("{}");
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_TRUE(o->verbose);
  EXPECT_TRUE(o->pedantic);
  EXPECT_TRUE(o->echo);
  EXPECT_FALSE(o->headers);
  EXPECT_FALSE(o->no_responders);
}

TEST(NatsConnectTest, BadJsonIsAParserError) {
  for (absl::string_view json :
       {"{verbose", "[]", "\"x\"", "{\"verbose\":[1]}", "{\"name\":1}",
        "{} extra", "{\"protocol\":\"one\"}"}) {
    absl::StatusOr<ConnectOptions> o = ParseConnectOptions(json);
    ASSERT_FALSE(o.ok()) << json;
    EXPECT_EQ(NatsErrorText(o.status()), kParserError);
    EXPECT_THAT(o.status().message(), HasSubstr("CONNECT options"));
  }
}

}  // namespace
}  // namespace manifold::nats
