#include "tests/broker/nats/nats_test_client.h"

#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"

namespace manifold::testing {

// ---------------------------------------------------------------------------
// NatsHarness

NatsHarness::NatsHarness(BrokerOptions options, NatsOptions nats)
    : native_(std::move(options)), nats_(std::move(nats)) {}

NatsClient& NatsHarness::Accept(absl::string_view peer) {
  Connection& c = broker().Accept(PeerInfo{std::string(peer)}, native_.now(),
                                  std::make_unique<NatsCodec>(nats_));
  auto client = std::unique_ptr<NatsClient>(new NatsClient(*this, c.id()));
  NatsClient& ref = *client;
  clients_.emplace(c.id(), std::move(client));
  Pump();
  return ref;
}

NatsClient& NatsHarness::ConnectNats(absl::string_view json) {
  NatsClient& client = Accept();
  ServerOp info = client.Next();
  EXPECT_EQ(info.op, "INFO") << info.raw;
  client.Handshake(json);
  return client;
}

void NatsHarness::Advance(absl::Duration by) {
  native_.Advance(by);
  Pump();
}

void NatsHarness::Pump() {
  native_.Pump();
  for (auto& [id, client] : clients_) {
    if (client->closed_) continue;
    Connection* c = broker().FindConnection(id);
    if (c == nullptr) continue;
    if (client->reading_) {
      absl::string_view chunks[64];
      while (c->PendingOutputBytes() > 0) {
        const size_t n = c->PendingOutput(absl::MakeSpan(chunks));
        size_t written = 0;
        for (size_t i = 0; i < n; ++i) {
          client->raw_.append(chunks[i].data(), chunks[i].size());
          written += chunks[i].size();
        }
        c->Consume(written);
      }
    }
    if (c->ShouldClose()) {
      client->closed_ = true;
      client->close_reason_ = c->close_reason();
      broker().Close(id, "transport closed the link", native_.now());
    }
  }
  // Closing can queue output for others (events); one more round for them.
  native_.Pump();
}

// ---------------------------------------------------------------------------
// NatsClient

void NatsClient::Send(absl::string_view bytes) {
  ASSERT_FALSE(closed_) << "NATS client sends on a closed connection";
  Connection* c = harness_.broker().FindConnection(id_);
  ASSERT_NE(c, nullptr);
  c->Receive(bytes, harness_.native_.now());
  harness_.Pump();
}

std::string NatsClient::TakeRaw() {
  harness_.Pump();
  std::string raw = std::move(raw_);
  raw_.clear();
  ops_.clear();
  return raw;
}

void NatsClient::Parse() {
  while (true) {
    const size_t eol = raw_.find("\r\n");
    if (eol == std::string::npos) return;
    const std::string line = raw_.substr(0, eol);
    std::vector<std::string> f = absl::StrSplit(line, ' ', absl::SkipEmpty());
    ServerOp op;
    op.op = f.empty() ? "" : f[0];
    size_t used = eol + 2;
    if (op.op == "MSG" || op.op == "HMSG") {
      const bool h = op.op == "HMSG";
      const size_t fields = f.size() - 1;
      const size_t min = h ? 4 : 3;
      if (fields != min && fields != min + 1) {
        ADD_FAILURE() << "malformed " << line;
        raw_.erase(0, used);
        continue;
      }
      op.subject = f[1];
      op.sid = f[2];
      if (fields == min + 1) op.reply = f[3];
      size_t header_bytes = 0, total = 0;
      EXPECT_TRUE(absl::SimpleAtoi(f.back(), &total)) << line;
      if (h) {
        EXPECT_TRUE(absl::SimpleAtoi(f[f.size() - 2], &header_bytes));
      }
      if (raw_.size() < used + total + 2) return;  // wait for the rest
      op.headers = raw_.substr(used, header_bytes);
      op.payload = raw_.substr(used + header_bytes, total - header_bytes);
      EXPECT_EQ(raw_.substr(used + total, 2), "\r\n") << line;
      used += total + 2;
    } else if (op.op == "INFO") {
      op.text = line.substr(5);
      // nats-server ends INFO with " \r\n".
      if (!op.text.empty() && op.text.back() == ' ') op.text.pop_back();
    } else if (op.op == "-ERR") {
      const size_t open = line.find('\'');
      const size_t close = line.rfind('\'');
      EXPECT_TRUE(open != std::string::npos && close > open) << line;
      op.text = line.substr(open + 1, close - open - 1);
    } else if (op.op != "+OK" && op.op != "PING" && op.op != "PONG") {
      ADD_FAILURE() << "unknown server operation: " << line;
    }
    op.raw = raw_.substr(0, used);
    raw_.erase(0, used);
    ops_.push_back(std::move(op));
  }
}

ServerOp NatsClient::Next() {
  harness_.Pump();
  Parse();
  if (ops_.empty()) {
    ADD_FAILURE() << "NATS client expected an operation but has none"
                  << (raw_.empty() ? "" : absl::StrCat("; partial: ", raw_));
    return ServerOp();
  }
  ServerOp op = std::move(ops_.front());
  ops_.pop_front();
  return op;
}

std::vector<ServerOp> NatsClient::TakeAll() {
  harness_.Pump();
  Parse();
  std::vector<ServerOp> all(ops_.begin(), ops_.end());
  ops_.clear();
  return all;
}

bool NatsClient::Idle() {
  harness_.Pump();
  Parse();
  return ops_.empty() && raw_.empty();
}

void NatsClient::set_reading(bool reading) {
  reading_ = reading;
  harness_.Pump();
}

void NatsClient::Handshake(absl::string_view json) {
  Send(absl::StrCat("CONNECT ", json, "\r\nPING\r\n"));
  ServerOp op = Next();
  if (op.op == "+OK") op = Next();
  EXPECT_EQ(op.op, "PONG") << op.raw;
}

void NatsClient::Flush() {
  Send("PING\r\n");
  ServerOp op = Next();
  EXPECT_EQ(op.op, "PONG") << op.raw;
}

void NatsClient::Sub(absl::string_view subject, absl::string_view sid,
                     absl::string_view queue) {
  Send(queue.empty()
           ? absl::StrCat("SUB ", subject, " ", sid, "\r\n")
           : absl::StrCat("SUB ", subject, " ", queue, " ", sid, "\r\n"));
}

void NatsClient::Pub(absl::string_view subject, absl::string_view payload,
                     absl::string_view reply) {
  Send(absl::StrCat("PUB ", subject, reply.empty() ? "" : " ", reply, " ",
                    payload.size(), "\r\n", payload, "\r\n"));
}

void NatsClient::Hpub(absl::string_view subject, absl::string_view header_block,
                      absl::string_view payload, absl::string_view reply) {
  Send(absl::StrCat("HPUB ", subject, reply.empty() ? "" : " ", reply, " ",
                    header_block.size(), " ",
                    header_block.size() + payload.size(), "\r\n", header_block,
                    payload, "\r\n"));
}

}  // namespace manifold::testing
